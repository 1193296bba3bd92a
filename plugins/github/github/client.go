package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connhost/connhost/sdk"
	"github.com/hashicorp/go-hclog"
)

// The GitHub REST API as the connector speaks it.
const (
	// DefaultAPIURL is the API's base URL when GITHUB_API_URL is unset.
	DefaultAPIURL = "https://api.github.com"
	// APIVersion is sent as X-GitHub-Api-Version.
	APIVersion = "2022-11-28"
	// MediaType is sent as Accept.
	MediaType = "application/vnd.github+json"
	// StarMediaType is sent as Accept to GET /user/starred: it is the
	// documented way to get starred_at, when a star was given, with each
	// starred repository.
	StarMediaType = "application/vnd.github.star+json"
	// UserAgent is sent as User-Agent; GitHub refuses requests without one.
	UserAgent = "connhost-github/" + Version
)

// Defaults of the Connector's tunables.
const (
	// DefaultPageSize is per_page: GitHub's maximum, for the fewest
	// requests.
	DefaultPageSize = 100
	// DefaultRequestTimeout bounds one request, body included.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxAttempts bounds the tries of one request that fails with a
	// 5xx or a transport error, and separately the rate-limit waits of one
	// request.
	DefaultMaxAttempts = 4
	// DefaultMaxWait caps one wait (a rate limit, a backoff). A run's
	// deadline caps it too; this bounds a run without one. GitHub's
	// primary limit resets within an hour.
	DefaultMaxWait = time.Hour
	// MaxBodyBytes bounds one response body.
	MaxBodyBytes = 32 << 20
)

const (
	// resetMargin is added to a wait for X-RateLimit-Reset: the reset is
	// in whole seconds and clocks drift (octokit's throttling plugin adds
	// a second too).
	resetMargin = time.Second
	// waitHeadroom is the time a run must have left after a wait for the
	// wait to be worth it; otherwise it fails retryable at once rather
	// than sleep into its deadline.
	waitHeadroom = 5 * time.Second
	// secondaryWait is the first wait for a secondary rate limit that
	// names no time; GitHub asks for at least a minute, then exponentially
	// longer.
	secondaryWait = time.Minute
	// backoffBase and backoffMax shape the exponential backoff on 5xx
	// and transport errors.
	backoffBase = time.Second
	backoffMax  = 30 * time.Second
	// maxPages bounds one list: a loop of Link headers must end.
	maxPages = 10_000
	// maxMessage bounds the part of GitHub's error message quoted in a
	// failure.
	maxMessage = 200
)

// client talks to the GitHub REST API for one run or check. It is not safe
// for concurrent use: the connector makes one request at a time, as
// GitHub asks of integrations to stay clear of secondary rate limits.
type client struct {
	base     *url.URL
	token    string
	hc       *http.Client
	sleep    func(context.Context, time.Duration) error
	now      func() time.Time
	pageSize int
	timeout  time.Duration
	attempts int
	maxWait  time.Duration
	log      hclog.Logger

	// pause is a wait owed before the next request: a response said the
	// primary rate limit is spent, so the next request would be refused.
	pause      time.Duration
	pauseCause error
}

// response is a response the caller can use: 200 or 304.
type response struct {
	status int
	header http.Header
	body   []byte
}

// url returns the API URL of path (which starts with "/") and query.
func (c *client) url(path string, q url.Values) string {
	s := c.base.String() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// get sends GET u, conditional on etag when it is not empty, and returns a
// 200 or (after a conditional request) a 304. It waits out rate limits and
// retries 5xx statuses and transport errors with backoff, within the
// context's deadline; other outcomes are typed failures (see the sentinel
// errors).
func (c *client) get(ctx context.Context, u, etag, accept string) (*response, error) {
	if err := c.sameOrigin(u); err != nil {
		return nil, err
	}
	path := c.pathOf(u)
	failures, limits := 0, 0
	for {
		if c.pause > 0 {
			d, cause := c.pause, c.pauseCause
			c.pause, c.pauseCause = 0, nil
			if err := c.wait(ctx, d, cause); err != nil {
				return nil, err
			}
		}
		resp, err := c.do(ctx, u, etag, accept)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, ErrUnexpectedResponse) {
				return nil, err
			}
			failures++
			cause := fmt.Errorf("%w: GET %s: %s", ErrUnavailable, path, c.scrub(err.Error()))
			if failures >= c.attempts {
				return nil, sdk.Retryable(fmt.Errorf("%w (%d attempts)", cause, failures))
			}
			if err := c.wait(ctx, backoff(failures), cause); err != nil {
				return nil, err
			}
			continue
		}
		c.log.Debug("github response", "path", path, "status", resp.status,
			"ratelimit_remaining", resp.header.Get("X-RateLimit-Remaining"))
		if d, cause := c.rateLimit(resp, path, limits); cause != nil {
			limits++
			if limits > c.attempts {
				return nil, sdk.Retryable(fmt.Errorf("%w; still limited after %d waits", cause, limits-1))
			}
			if err := c.wait(ctx, d, cause); err != nil {
				return nil, err
			}
			continue
		}
		c.notePrimaryLimit(resp)
		switch resp.status {
		case http.StatusOK:
			return resp, nil
		case http.StatusNotModified:
			if etag == "" {
				return nil, fmt.Errorf("%w: GET %s: 304 to an unconditional request", ErrUnexpectedResponse, path)
			}
			return resp, nil
		case http.StatusUnauthorized:
			return nil, sdk.CredentialRejected(fmt.Sprintf("GitHub refused the token: GET %s: 401 %s", path, c.message(resp)))
		}
		switch s := resp.status; {
		case s >= 500:
			failures++
			cause := fmt.Errorf("%w: GET %s: %d %s", ErrUnavailable, path, s, c.message(resp))
			if failures >= c.attempts {
				return nil, sdk.Retryable(fmt.Errorf("%w (%d attempts)", cause, failures))
			}
			d := backoff(failures)
			if ra, ok := parseRetryAfter(resp.header.Get("Retry-After"), c.serverNow(resp.header)); ok && ra > d {
				d = ra
			}
			// One wait covers both the backoff and a spent limit.
			d = max(d, c.pause)
			c.pause, c.pauseCause = 0, nil
			if err := c.wait(ctx, d, cause); err != nil {
				return nil, err
			}
		case s == http.StatusForbidden:
			return nil, fmt.Errorf("%w: GET %s: 403 %s%s", ErrForbidden, path, c.message(resp), permissionHint(path))
		case s == http.StatusNotFound, s == http.StatusGone:
			return nil, fmt.Errorf("%w: GET %s: %d %s", ErrNotFound, path, s, c.message(resp))
		default:
			return nil, fmt.Errorf("%w: GET %s: %d %s", ErrUnexpectedResponse, path, s, c.message(resp))
		}
	}
}

// do sends one request and reads its body, all within the request
// timeout. The token travels in the Authorization header and nowhere else.
func (c *client) do(ctx context.Context, u, etag, accept string) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnexpectedResponse, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: GET %s: body longer than %d bytes", ErrUnexpectedResponse, c.pathOf(u), MaxBodyBytes)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// rateLimit reports whether a 403 or 429 is a rate limit and how long to
// wait, following GitHub's rules: Retry-After first; then, with
// X-RateLimit-Remaining 0, until X-RateLimit-Reset; otherwise (a 429, or
// a 403 whose message says so) a secondary limit: a minute, doubling with
// each wait (n is the waits so far). cause is nil when resp is not a rate
// limit.
func (c *client) rateLimit(resp *response, path string, n int) (wait time.Duration, cause error) {
	if resp.status != http.StatusForbidden && resp.status != http.StatusTooManyRequests {
		return 0, nil
	}
	now := c.serverNow(resp.header)
	if d, ok := parseRetryAfter(resp.header.Get("Retry-After"), now); ok {
		return d, fmt.Errorf("%w: GET %s: %d with Retry-After %s (secondary rate limit)", ErrRateLimited, path, resp.status, d)
	}
	spent := resp.header.Get("X-RateLimit-Remaining") == "0"
	if spent {
		if reset, ok := parseEpoch(resp.header.Get("X-RateLimit-Reset")); ok {
			return max(reset.Sub(now), 0) + resetMargin,
				fmt.Errorf("%w: GET %s: primary rate limit spent until %s", ErrRateLimited, path, reset.UTC().Format(time.RFC3339))
		}
	}
	msg := c.message(resp)
	if spent || resp.status == http.StatusTooManyRequests || strings.Contains(strings.ToLower(msg), "rate limit") {
		return secondaryWait << min(n, 6), fmt.Errorf("%w: GET %s: %d %s (secondary rate limit)", ErrRateLimited, path, resp.status, msg)
	}
	return 0, nil
}

// notePrimaryLimit remembers that a response (of any status but a rate
// limit, which waits on its own) spent the primary limit, so the next
// request waits for the reset instead of being refused.
func (c *client) notePrimaryLimit(resp *response) {
	if resp.header.Get("X-RateLimit-Remaining") != "0" {
		return
	}
	reset, ok := parseEpoch(resp.header.Get("X-RateLimit-Reset"))
	if !ok {
		return
	}
	c.pause = max(reset.Sub(c.serverNow(resp.header)), 0) + resetMargin
	c.pauseCause = fmt.Errorf("%w: primary rate limit spent until %s", ErrRateLimited, reset.UTC().Format(time.RFC3339))
}

// wait sleeps d, unless d is longer than MaxWait or would leave the run
// less than waitHeadroom before its deadline: then it fails retryable, so
// the host retries the run later with backoff instead of timing it out.
func (c *client) wait(ctx context.Context, d time.Duration, cause error) error {
	if d <= 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); d+waitHeadroom > left {
			return sdk.Retryable(fmt.Errorf("%w; a wait of %s would outlast this run's deadline (%s left)", cause, d, max(left, 0).Round(time.Second)))
		}
	}
	if d > c.maxWait {
		return sdk.Retryable(fmt.Errorf("%w; a wait of %s is longer than the connector's limit of %s", cause, d, c.maxWait))
	}
	c.log.Info("waiting before the next request", "wait", d.String(), "reason", cause.Error())
	return c.sleep(ctx, d)
}

// serverNow is the response's Date, or the local clock without one.
// Rate-limit resets are the server's times: measuring them against the
// server's clock keeps local clock skew out of the waits.
func (c *client) serverNow(h http.Header) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return c.now()
}

// message returns GitHub's error message from a response body (or the
// status text), printable, bounded and without the token: it ends up in
// a failure message an operator reads.
func (c *client) message(resp *response) string {
	var e struct {
		Message string `json:"message"`
	}
	msg := http.StatusText(resp.status)
	if json.Unmarshal(resp.body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, "\uFFFD"))
	if utf8.RuneCountInString(msg) > maxMessage {
		msg = string([]rune(msg)[:maxMessage]) + "…"
	}
	return c.scrub(msg)
}

// scrub removes the token from text that may hold what a server sent.
// The SDK redacts failure messages and logs too; this keeps the token out
// of errors that are not (yet) failures.
func (c *client) scrub(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[REDACTED]")
}

// sameOrigin refuses a URL outside the API's scheme and host: every
// request carries the token, so following a Link (or a stored page URL)
// elsewhere would hand it to another server.
func (c *client) sameOrigin(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%w: URL %q: %v", ErrUnexpectedResponse, u, err)
	}
	if p.Scheme != c.base.Scheme || !strings.EqualFold(p.Host, c.base.Host) || p.User != nil {
		return fmt.Errorf("%w: %s://%s is outside GITHUB_API_URL's origin %s://%s; not following it", ErrUnexpectedResponse, p.Scheme, p.Host, c.base.Scheme, c.base.Host)
	}
	return nil
}

// pathOf returns u's path below the API's base path, for messages.
func (c *client) pathOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return "/" + strings.TrimLeft(strings.TrimPrefix(p.Path, c.base.Path), "/")
}

// permissionHint names the fine-grained token permission a 403 on path
// most likely lacks.
func permissionHint(path string) string {
	switch {
	case strings.HasPrefix(path, "/user/starred"):
		return " (a fine-grained token needs the account permission Starring: read)"
	case strings.HasSuffix(path, "/issues"):
		return " (a fine-grained token needs the repository permissions Issues: read and Pull requests: read)"
	}
	return " (a fine-grained token needs the repository permission Metadata: read)"
}

// backoff is the wait before retry n (1-based) of a failed request.
func backoff(n int) time.Duration {
	return min(backoffBase<<min(n-1, 10), backoffMax)
}

// maxHeaderSeconds bounds the seconds read from a header, so the
// conversion to a Duration cannot overflow. Waits this long fail anyway.
const maxHeaderSeconds = 1 << 31

// parseRetryAfter parses Retry-After: delay-seconds or an HTTP-date,
// measured from now.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, maxHeaderSeconds)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// parseEpoch parses X-RateLimit-Reset: seconds since the Unix epoch.
func parseEpoch(v string) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// list walks the pages of a list endpoint from first, following Link
// headers. prev is the list as the last run saw it: each page whose URL
// matches is asked for conditionally, and an unchanged page (304) is not
// downloaded again; visit gets its stored Page instead of items, and the
// walk goes on to the stored next page. visit returns the Page to store
// for a downloaded page (URL, ETag and N are filled in here). list returns
// the pages to store and how many were unchanged.
func (c *client) list(ctx context.Context, first, accept string, prev []Page,
	visit func(items []json.RawMessage, old *Page) (Page, error)) ([]Page, int, error) {
	var out []Page
	unchanged := 0
	seen := map[string]bool{}
	for i, next := 0, first; next != ""; i++ {
		u := next
		if i == maxPages {
			return nil, 0, fmt.Errorf("%w: GET %s: more than %d pages", ErrUnexpectedResponse, c.pathOf(first), maxPages)
		}
		if seen[u] {
			return nil, 0, fmt.Errorf("%w: GET %s: Link headers loop back to %s", ErrUnexpectedResponse, c.pathOf(first), u)
		}
		seen[u] = true
		var old *Page
		if i < len(prev) && prev[i].URL == u {
			old = &prev[i]
		}
		etag := ""
		if old != nil && !(i == len(prev)-1 && old.N >= c.pageSize) {
			etag = old.ETag
		}
		resp, err := c.get(ctx, u, etag, accept)
		if err != nil {
			return nil, 0, err
		}
		linkNext, err := c.next(u, resp.header)
		if err != nil {
			return nil, 0, err
		}
		if resp.status == http.StatusNotModified {
			if _, err := visit(nil, old); err != nil {
				return nil, 0, err
			}
			p := *old
			if e := resp.header.Get("ETag"); e != "" {
				p.ETag = e
			}
			out = append(out, p)
			unchanged++
			switch {
			case linkNext != "":
				next = linkNext
			case i+1 < len(prev):
				next = prev[i+1].URL
			default:
				next = ""
			}
			continue
		}
		items, err := decodeArray(resp.body)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: GET %s: %v", ErrUnexpectedResponse, c.pathOf(u), err)
		}
		p, err := visit(items, nil)
		if err != nil {
			return nil, 0, err
		}
		p.URL, p.ETag, p.N = u, resp.header.Get("ETag"), len(items)
		out = append(out, p)
		next = linkNext
	}
	return out, unchanged, nil
}

// next returns the absolute URL of the Link header's rel="next", or "".
func (c *client) next(reqURL string, h http.Header) (string, error) {
	links, err := parseLink(strings.Join(h.Values("Link"), ", "))
	if err != nil {
		return "", fmt.Errorf("%w: GET %s: %v", ErrUnexpectedResponse, c.pathOf(reqURL), err)
	}
	ref := nextLink(links)
	if ref == "" {
		return "", nil
	}
	base, err := url.Parse(reqURL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnexpectedResponse, err)
	}
	u, err := base.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("%w: GET %s: Link next %q: %v", ErrUnexpectedResponse, c.pathOf(reqURL), ref, err)
	}
	s := u.String()
	if err := c.sameOrigin(s); err != nil {
		return "", err
	}
	return s, nil
}

// decodeArray splits a JSON array into its elements.
func decodeArray(body []byte) ([]json.RawMessage, error) {
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '[' {
		return nil, errors.New("body is not a JSON array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, err
	}
	return items, nil
}

// parseAPIURL parses GITHUB_API_URL (empty means DefaultAPIURL). It must
// be an absolute https URL without credentials, query or fragment; http is
// accepted only for loopback hosts (tests, local proxies), since every
// request carries the token.
func parseAPIURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		raw = DefaultAPIURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAPIURL, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%w: scheme %q; want https", ErrInvalidAPIURL, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("%w: no host", ErrInvalidAPIURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: it holds user information; the token goes in GITHUB_TOKEN", ErrInvalidAPIURL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%w: it has a query or fragment", ErrInvalidAPIURL)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%w: http is accepted only for loopback hosts; use https, the token would cross the network in clear", ErrInvalidAPIURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOriginRedirect is the redirect policy of the connector's HTTP
// client. GitHub redirects renamed and transferred repositories within
// the API; a redirect to another scheme or host is refused, because Go
// keeps the Authorization header on a redirect to a subdomain or to http.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("%w: more than 5 redirects", ErrUnexpectedResponse)
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		return fmt.Errorf("%w: redirect from %s://%s to %s://%s refused", ErrUnexpectedResponse, first.Scheme, first.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// validToken reports whether a token can travel in a header unchanged.
// Trimming it instead would send a value the SDK does not know to redact.
func validToken(t string) bool {
	for _, r := range t {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return t != ""
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
