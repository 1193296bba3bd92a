package cli_test

import (
	"strings"
	"testing"
)

// `connhost ui` prints the one-time link: the API address joined with the
// path the host returned, in text and in JSON; API refusals are the usual
// typed errors.
func TestUI(t *testing.T) {
	t.Parallel()
	signIn := `{"path":"/ui/signin?code=abc-123","expires_at":"2026-12-06T02:10:00Z"}`
	tests := []struct {
		name     string
		args     []string
		routes   map[string][]reply
		code     int
		stdout   []string
		stderr   string
		wantJSON bool
	}{
		{
			name:   "text",
			args:   []string{"ui"},
			routes: map[string][]reply{"POST /v1/console/signin": {{body: signIn}}},
			stdout: []string{"/ui/signin?code=abc-123\n", "it works once, until 2026-12-06T02:10:00Z"},
		},
		{
			name:     "json",
			args:     []string{"ui", "-o", "json"},
			routes:   map[string][]reply{"POST /v1/console/signin": {{body: signIn}}},
			stdout:   []string{`"url": "http://127.0.0.1:`, `/ui/signin?code=abc-123"`, `"expires_at": "2026-12-06T02:10:00Z"`},
			wantJSON: true,
		},
		{
			name: "no console",
			args: []string{"ui"},
			routes: map[string][]reply{"POST /v1/console/signin": {{status: 503,
				body: `{"error":{"code":"unavailable","message":"this host serves no web console"}}`}}},
			code:   1,
			stderr: "this host serves no web console",
		},
		{
			name:   "an argument",
			args:   []string{"ui", "extra"},
			code:   2,
			stderr: "error: usage",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPI(tt.routes)
			r := runCLI(t, f, options{}, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			if tt.stderr != "" && !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, r.stderr)
			}
			if tt.code == 0 {
				calls := f.Calls()
				if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != "/v1/console/signin" || calls[0].Body != "" {
					t.Errorf("calls %+v", calls)
				}
			}
			if strings.Contains(r.stdout+r.stderr, testToken) {
				t.Errorf("the token is printed")
			}
		})
	}
}
