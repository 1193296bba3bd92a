package api_test

import (
	"net/http"
	"testing"

	"github.com/connhost/connhost/host/internal/hosttest"
)

// A host without a console answers POST /v1/console/signin 503
// unavailable; a body is refused before that, as on every bodiless POST.
// (Issuing and redeeming codes is tested in host/console.)
func TestConsoleSignInWithoutConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no console", nil, http.StatusServiceUnavailable, "unavailable"},
		{"a body", `{"x":1}`, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call("POST", "/v1/console/signin", tt.body)
			if r.Status != tt.status || r.ErrorBody(t).Code != tt.code {
				t.Fatalf("got %s, want %d %s", r, tt.status, tt.code)
			}
		})
	}
}
