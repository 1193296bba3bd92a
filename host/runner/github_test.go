package runner_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/plugins/github/githubtest"
)

// The GitHub connector end to end through the host: capture → Check
// records validity → a run collects repos → a rejected token fails the run
// with credential_rejected and marks the credential invalid.
func TestGitHubConnectorThroughTheHost(t *testing.T) {
	t.Parallel()
	const token = "ghp_CANARY0123456789abcdefABCDEF01234567"
	fake := githubtest.New(token)
	fake.AddRepo(githubtest.Repo{ID: 1, Name: "alpha", FullName: "octocat/alpha"})
	fake.AddRepo(githubtest.Repo{ID: 2, Name: "beta", FullName: "octocat/beta"})
	fake.PutIssue("octocat/alpha", githubtest.Issue{ID: 10, Number: 1, Title: "first", State: "open", UpdatedAt: githubtest.DefaultNow})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	h := hosttest.New(t, hosttest.Options{
		HostEnv: map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "GITHUB_API_URL": srv.URL,
			"GITHUB_TOKEN": ""}, // an empty host value must not shadow the stored token
		AllowHostEnv: true,
		Plugins:      map[string]string{"github": "github.com/connhost/connhost/plugins/github"},
	})
	ctx := context.Background()
	c, _, err := h.Control.CreateConnection(ctx, "operator", store.NewConnection{ConnectorKey: "github", Label: "me"})
	if err != nil {
		t.Fatal(err)
	}
	capture, err := h.Control.SetCredential(ctx, "operator", c.ID, map[string]string{"GITHUB_TOKEN": token}, nil)
	if err != nil {
		t.Fatal(err)
	}
	meta := capture.Credential
	if meta.Validity == nil || !meta.Validity.Valid || !strings.Contains(meta.Validity.Message, "octocat") {
		t.Fatalf("validity after capture = %+v", meta.Validity)
	}

	run, err := h.RunNow(c.ID)
	if err != nil || run.Status != store.RunSucceeded {
		t.Fatalf("run = %+v, %v", run, err)
	}
	for stream, want := range map[string]int{"repos": 2, "issues": 1} {
		page, err := h.Store.ListRecords(ctx, store.RecordQuery{ConnectionID: c.ID, Stream: stream, Limit: 100})
		if err != nil || len(page.Records) != want {
			t.Fatalf("%s records = %d (%v), want %d", stream, len(page.Records), err, want)
		}
	}

	// The provider revokes the token: the next run fails as a rejected
	// credential, and the credential is marked invalid.
	fake.Inject("/user/repos", githubtest.Status(401))
	run, err = h.RunNow(c.ID)
	if run.Status != store.RunFailed || run.FailureCode != failure.CredentialRejected {
		t.Fatalf("run with a rejected token = %+v, %v", run, err)
	}
	// A rejected credential is not retried: only a person can fix it.
	if q := h.Queue(c.ID); len(q) != 0 {
		t.Fatalf("a rejected credential was queued for a retry: %+v", q)
	}
	meta, err = h.Store.GetCredentialMeta(ctx, c.ID)
	if err != nil || meta.Validity == nil || meta.Validity.Valid {
		t.Fatalf("validity after rejection = %+v, %v", meta.Validity, err)
	}
	if strings.Contains(h.Logs.String(), token) {
		t.Fatal("token reached the host log")
	}
}
