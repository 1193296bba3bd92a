package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseAPIURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr string
	}{
		{"unset means github.com", "", DefaultAPIURL, ""},
		{"enterprise", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3", ""},
		{"loopback http", "http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"localhost http", "http://localhost:8080/api", "http://localhost:8080/api", ""},
		{"ipv6 loopback http", "http://[::1]:8080", "http://[::1]:8080", ""},
		{"remote http", "http://ghe.example.com/api/v3", "", "http is accepted only for loopback hosts"},
		{"other scheme", "ftp://ghe.example.com", "", `scheme "ftp"`},
		{"relative", "/api/v3", "", `scheme ""`},
		{"no host", "https:///api", "", "no host"},
		{"user info", "https://me:secret@ghe.example.com", "", "user information"},
		{"query", "https://ghe.example.com/?x=1", "", "query or fragment"},
		{"fragment", "https://ghe.example.com/#x", "", "query or fragment"},
		{"unparsable", "https://ghe example.com", "", "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := parseAPIURL(tt.raw)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidAPIURL) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseAPIURL(%q) = %v, %v; want ErrInvalidAPIURL containing %q", tt.raw, u, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("parseAPIURL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		v      string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "30", 30 * time.Second, true},
		{"zero", "0", 0, true},
		{"spaces", " 7 ", 7 * time.Second, true},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"huge", "99999999999999999", maxHeaderSeconds * time.Second, true},
		{"negative", "-1", 0, false},
		{"empty", "", 0, false},
		{"garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRetryAfter(tt.v, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for n := 1; n <= 8; n++ {
		got = append(got, backoff(n))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
}

func TestValidToken(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		token string
		want  bool
	}{
		"classic":          {"ghp_0123456789abcdefABCDEF0123456789abcd", true},
		"fine-grained":     {"github_pat_11AAAAAAA0_abcdefghijklmnopqrstuvwxyz", true},
		"empty":            {"", false},
		"trailing newline": {"ghp_abc\n", false},
		"inner space":      {"ghp abc", false},
		"tab":              {"ghp_abc\t", false},
		"nbsp":             {"ghp_abc\u00a0", false},
		"del":              {"ghp_abc\x7f", false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := validToken(tt.token); got != tt.want {
				t.Errorf("validToken(%q) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

func TestPermissionHint(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/user/starred":            "Starring: read",
		"/repos/octo/alpha/issues": "Issues: read",
		"/user/repos":              "Metadata: read",
		"/repos/octo/alpha":        "Metadata: read",
	} {
		if got := permissionHint(path); !strings.Contains(got, want) {
			t.Errorf("permissionHint(%q) = %q, want it to name %q", path, got, want)
		}
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	c := &client{token: "s3cr3t-t0ken"}
	long := strings.Repeat("é", maxMessage+10)
	for name, tt := range map[string]struct {
		status int
		body   string
		want   string
	}{
		"github message": {403, `{"message":"Resource not accessible by personal access token"}`, "Resource not accessible by personal access token"},
		"no body":        {502, ``, "Bad Gateway"},
		"html body":      {502, `<html>bad gateway</html>`, "Bad Gateway"},
		"control chars":  {403, `{"message":"a\nb\u0000c"}`, "a b c"},
		"echoed token":   {401, `{"message":"bad token s3cr3t-t0ken"}`, "bad token [REDACTED]"},
		"bounded":        {403, `{"message":"` + long + `"}`, strings.Repeat("é", maxMessage) + "…"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := c.message(&response{status: tt.status, body: []byte(tt.body)}); got != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStateEncodeShedsETagsFirst(t *testing.T) {
	t.Parallel()
	since := time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC)
	page := Page{URL: "https://api.github.com/" + strings.Repeat("x", 200), ETag: `W/"0123456789abcdef"`, N: 100}
	full := func() *State {
		st := newState(DefaultAPIURL, "all")
		st.Repos = []Page{{URL: page.URL, ETag: page.ETag, N: 1, Repos: []RepoRef{{ID: 1, FullName: "octo/alpha"}}}}
		st.Starred = []Page{page, page}
		st.Issues["1"] = &Cursor{Since: since, Pages: []Page{page, page, page}}
		return st
	}
	size := func(st *State) int {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	noIssuePages := full()
	noIssuePages.Issues["1"].Pages = nil
	noStarred := full()
	noStarred.Issues["1"].Pages, noStarred.Starred = nil, nil
	cursorsOnly := full()
	cursorsOnly.Issues["1"].Pages, cursorsOnly.Starred, cursorsOnly.Repos = nil, nil, nil

	tests := []struct {
		name string
		max  int
		want *State
	}{
		{"fits", size(full()), full()},
		{"drops issue pages", size(noIssuePages), noIssuePages},
		{"then starred pages", size(noStarred), noStarred},
		{"then repository pages", size(cursorsOnly), cursorsOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := full().encode(tt.max)
			if err != nil {
				t.Fatal(err)
			}
			var got State
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, &got); diff != "" {
				t.Errorf("encoded state (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("cursors alone too large", func(t *testing.T) {
		t.Parallel()
		if _, err := full().encode(size(cursorsOnly) - 1); !errors.Is(err, ErrStateTooLarge) {
			t.Errorf("err = %v, want ErrStateTooLarge", err)
		}
	})
}

func TestStateUsable(t *testing.T) {
	t.Parallel()
	ok := func() *State {
		st := newState(DefaultAPIURL, "all")
		st.Repos = []Page{{URL: DefaultAPIURL + "/user/repos", Repos: []RepoRef{{ID: 1, FullName: "octo/alpha"}}}}
		st.Issues["1"] = &Cursor{}
		return st
	}
	tests := []struct {
		name   string
		mutate func(*State)
		want   string
	}{
		{"usable", func(*State) {}, ""},
		{"other version", func(s *State) { s.V = 2 }, "version 2"},
		{"other API", func(s *State) { s.API = "https://ghe.example.com/api/v3" }, "another GITHUB_API_URL"},
		{"other issues_state", func(s *State) { s.IssuesState = "open" }, "issues_state"},
		{"climbing repository name", func(s *State) { s.Repos[0].Repos[0].FullName = "octo/.." }, "invalid repository"},
		{"bad cursor key", func(s *State) { s.Issues["x"] = &Cursor{} }, "invalid issues cursor"},
		{"nil cursor", func(s *State) { s.Issues["2"] = nil }, "invalid issues cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := ok()
			tt.mutate(st)
			err := st.usable(DefaultAPIURL, "all")
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("usable = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSleepCtx(t *testing.T) {
	t.Parallel()
	if err := sleepCtx(t.Context(), time.Millisecond); err != nil {
		t.Errorf("sleepCtx = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled sleepCtx = %v, want context.Canceled", err)
	}
}

// TestServerNow: waits are measured on the server's clock (Date), and on
// the local one only when a response has no Date.
func TestServerNow(t *testing.T) {
	t.Parallel()
	local := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &client{now: func() time.Time { return local }}
	server := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	if got := c.serverNow(http.Header{"Date": {server.Format(http.TimeFormat)}}); !got.Equal(server) {
		t.Errorf("with Date: %v, want %v", got, server)
	}
	if got := c.serverNow(http.Header{"Date": {"yesterday"}}); !got.Equal(local) {
		t.Errorf("with a bad Date: %v, want the local clock %v", got, local)
	}
	if got := c.serverNow(http.Header{}); !got.Equal(local) {
		t.Errorf("without Date: %v, want the local clock %v", got, local)
	}
}
