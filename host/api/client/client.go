package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/version"
)

// maxErrorBody bounds how much of an error response is read: error bodies
// are small JSON objects, and anything bigger is not ours.
const maxErrorBody = 64 << 10

// Client talks to one connhost API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// New returns a client for the API at addr: an http or https URL (a path
// prefix is kept, for a host behind a reverse proxy) or a bare host:port,
// taken as http. token is the operator bearer token. hc nil means a client
// with no overall timeout, so event streams can stay open; bound calls
// with their context instead.
func New(addr, token string, hc *http.Client) (*Client, error) {
	base, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: base, token: token, hc: hc}, nil
}

// Addr returns the API base URL the client talks to.
func (c *Client) Addr() string { return c.base.String() }

func parseAddr(addr string) (*url.URL, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidAddr)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		// url.Parse's error repeats the input; the input might carry
		// credentials in a userinfo part, so say only what is wrong.
		return nil, fmt.Errorf("%w: not a URL", ErrInvalidAddr)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: scheme %q is not http or https", ErrInvalidAddr, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("%w: no host", ErrInvalidAddr)
	case u.User != nil:
		return nil, fmt.Errorf("%w: credentials in the address are not supported (use the operator token)", ErrInvalidAddr)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w: query or fragment not allowed", ErrInvalidAddr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// url builds the absolute URL of an API path (already escaped) and query.
func (c *Client) url(path string, query url.Values) string {
	u := *c.base
	// path is already escaped (an id may hold '/'): set RawPath so String
	// keeps the escaping, and Path to its decoded form to match.
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// newRequest builds an authenticated request. body, if not nil, is
// marshalled as JSON.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // "<" and ">" in a label or config travel as they are
		err := enc.Encode(body)
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if err != nil {
			// Marshalling apitypes values cannot fail; the error text never
			// holds the body's values.
			return nil, fmt.Errorf("client: encode %s %s request body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrInvalidAddr, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "connhost-client/"+version.Version)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// send performs req and returns the response when its status is 2xx; any
// other status is decoded into an *APIError and the body closed.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL (ids only, no secrets) and
		// keeps context.Canceled and friends reachable with errors.Is.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// decodeError turns a non-2xx response into an *APIError. A body that is
// not the typed error (a proxy's HTML page) becomes a code derived from the
// status; its text is not copied.
func decodeError(resp *http.Response) *APIError {
	e := &APIError{Status: resp.StatusCode}
	var body apitypes.Error
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Field, e.RunID = body.Error.Code, body.Error.Message, body.Error.Field, body.Error.RunID
		return e
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.Code = apitypes.CodeUnauthorized
	case http.StatusNotFound:
		e.Code = apitypes.CodeNotFound
	case http.StatusMethodNotAllowed:
		e.Code = apitypes.CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		e.Code = apitypes.CodePayloadTooLarge
	default:
		e.Code = fmt.Sprintf("http_%d", resp.StatusCode)
	}
	e.Message = http.StatusText(resp.StatusCode)
	return e
}

// do sends a JSON request and decodes a 2xx JSON response into out (if not
// nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, ctxErr)
		}
		// The JSON decoder's message quotes at most a token of the
		// response, never the request; it helps debug a proxy in the way.
		return fmt.Errorf("%w: %s %s: %w", ErrBadResponse, method, path, err)
	}
	return nil
}

// pathOf joins path segments, escaping each id.
func pathOf(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// values builds a query from key/value pairs, dropping empty values.
func values(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// errEmptyID is returned for an empty id argument: a request to
// "/v1/connections/" would hit the list route instead.
func errEmptyID(what string) error {
	return fmt.Errorf("%w: %s", ErrEmptyID, what)
}

// IsCode reports whether err is an *APIError with the code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}
