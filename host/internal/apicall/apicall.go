// Package apicall sends requests to a connhost HTTP API from tests and
// checks what comes back, so every package's tests talk to the API the
// same way: JSON bodies, a bearer token, the whole body read.
package apicall

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
)

// Response is a received response with its whole body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// String is the status and the start of the body, for failure messages.
func (r Response) String() string { return fmt.Sprintf("%d %.300s", r.Status, r.Body) }

// ErrorBody decodes the API's typed error.
func (r Response) ErrorBody(t testing.TB) apitypes.ErrorBody {
	t.Helper()
	var e apitypes.Error
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	return e.Error
}

// Caller sends requests to one API.
type Caller struct {
	T testing.TB
	// Base is the API's origin, e.g. "http://127.0.0.1:7480".
	Base string
	// Auth is the Authorization header of Call and OK ("Bearer …").
	Auth string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// Call sends a request with c.Auth. body is sent as is when it is a string
// or a []byte, else JSON-encoded; nil sends no body.
func (c Caller) Call(method, path string, body any) Response {
	c.T.Helper()
	return c.CallAuth(method, path, body, c.Auth)
}

// CallAuth is Call with auth as the Authorization header ("" sends none).
func (c Caller) CallAuth(method, path string, body any, auth string) Response {
	c.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.T.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		c.T.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// OK calls, requires status want, and decodes the body into out when out
// is not nil. out is zeroed first, so fields the response omits do not
// keep an earlier response's values.
func (c Caller) OK(want int, method, path string, body, out any) Response {
	c.T.Helper()
	r := c.Call(method, path, body)
	if r.Status != want {
		c.T.Fatalf("%s %s: got %s, want status %d", method, path, r, want)
	}
	if out != nil {
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(r.Body, out); err != nil {
			c.T.Fatalf("%s %s: decode %q: %v", method, path, r.Body, err)
		}
	}
	return r
}
