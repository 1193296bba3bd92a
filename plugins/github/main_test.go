package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/plugins/github/github"
	"github.com/connhost/connhost/plugins/github/githubtest"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
)

// token is the canary: it must not appear in anything the plugin logs.
const token = "ghp_PLUGINcanary0123456789abcdefCANARY"

// fake serves a small account: two repositories, three issues, one star.
func fake(t *testing.T) (*githubtest.Fake, map[string]string) {
	t.Helper()
	f := githubtest.New(token)
	now := githubtest.DefaultNow
	f.AddRepo(githubtest.Repo{ID: 1, FullName: "octo/alpha"})
	f.AddRepo(githubtest.Repo{ID: 2, FullName: "octo/beta"})
	f.PutIssue("octo/alpha", githubtest.Issue{ID: 11, Number: 1, UpdatedAt: now.Add(-2 * time.Hour)})
	f.PutIssue("octo/alpha", githubtest.Issue{ID: 12, Number: 2, UpdatedAt: now.Add(-time.Hour), PullRequest: &githubtest.PullRequestRef{URL: "https://example.invalid/pulls/2"}})
	f.PutIssue("octo/beta", githubtest.Issue{ID: 21, Number: 1, State: "closed", UpdatedAt: now.Add(-3 * time.Hour)})
	f.AddStar(githubtest.Star{StarredAt: now.Add(-24 * time.Hour), Repo: githubtest.Repo{ID: 9, FullName: "others/starred"}})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, map[string]string{github.TokenEnv: token, github.APIURLEnv: srv.URL}
}

// TestPluginAcceptance runs the built binary through the SDK's acceptance
// checks against the fake API: manifest, check, a run, a resumed run
// (conditional requests), credentials_required.
func TestPluginAcceptance(t *testing.T) {
	t.Parallel()
	f, env := fake(t)
	var logs sdktest.LogBuffer
	res := sdktest.Acceptance(t, sdktest.Build(t, "."), sdktest.Options{Env: env, LogOutput: &logs})
	if res == nil || res.Err != nil {
		t.Fatalf("acceptance run: %+v", res)
	}
	for stream, want := range map[string]int{"repos": 2, "issues": 3, "starred": 1} {
		if got := len(res.RecordsOf(stream)); got != want {
			t.Errorf("%d %s records, want %d", got, stream, want)
		}
	}
	statuses := map[int]int{}
	for _, r := range f.Requests() {
		statuses[r.Status]++
		if got := r.Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("%s: Authorization %q", r.Path, got)
		}
	}
	// The resumed run asks conditionally: the listing, the star and the
	// issues of an unchanged repository are 304s.
	if statuses[http.StatusNotModified] == 0 {
		t.Errorf("statuses %v: no 304 in the resumed run", statuses)
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the plugin's log output holds the token")
	}
}

// TestPluginFailures: typed failures cross the plugin boundary intact —
// a rejected credential (not retryable) in Run and Check, and a rate limit
// beyond the run's deadline (retryable).
func TestPluginFailures(t *testing.T) {
	t.Parallel()
	bin := sdktest.Build(t, ".")
	t.Run("credential rejected", func(t *testing.T) {
		t.Parallel()
		_, env := fake(t)
		env[github.TokenEnv] = "ghp_wrongCANARY"
		var logs sdktest.LogBuffer
		o := sdktest.Options{Env: env, LogOutput: &logs}
		res := sdktest.RunPlugin(t, bin, o)
		want := &wire.Failure{Code: wire.CodeCredentialRejected, Message: "GitHub refused the token: GET /user/repos: 401 Bad credentials"}
		if diff := cmp.Diff(want, res.Failure()); diff != "" {
			t.Errorf("run failure (-want +got):\n%s", diff)
		}
		chk, err := sdktest.CheckPlugin(t, bin, o)
		if err != nil {
			t.Fatal(err)
		}
		want.Message = "GitHub refused the token: GET /user: 401 Bad credentials"
		if diff := cmp.Diff(wire.CheckResult{Failure: want}, chk); diff != "" {
			t.Errorf("check (-want +got):\n%s", diff)
		}
		if strings.Contains(logs.String(), "ghp_wrongCANARY") {
			t.Error("the plugin's log output holds the token")
		}
	})
	t.Run("rate limit beyond the deadline", func(t *testing.T) {
		t.Parallel()
		f, env := fake(t)
		f.Inject("/user/repos", f.PrimaryRateLimit(http.StatusForbidden, time.Hour))
		res := sdktest.RunPlugin(t, bin, sdktest.Options{Env: env, Timeout: 30 * time.Second})
		fl := res.Failure()
		if fl == nil || !fl.Retryable || fl.Code != wire.CodeConnectorFailed || !strings.Contains(fl.Message, "github: rate limited") {
			t.Errorf("failure = %v, want a retryable rate-limit failure", res.Err)
		}
	})
}
