package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/apicall"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/plugins/imap/dovecottest"
	"github.com/connhost/connhost/plugins/imap/imapconn"
)

const (
	failureRejected = "credential_rejected"
	// imapLogin is the IMAP_USERNAME: 8 bytes at least, as the host stores
	// no shorter value.
	imapLogin = "alice@example.org"
)

// TestIMAPConnectorEndToEnd drives the IMAP connector through the real
// binaries against a real Dovecot: `connhost serve` runs with
// IMAP_USERNAME= and IMAP_PASSWORD= (empty) in its environment, and the
// operator uses only the CLI. The credential — two values captured from
// stdin in one `credential set` — is checked valid, a scheduled and a
// manual run collect the mailbox, a password the server no longer accepts
// fails the run credential_rejected and shows the credential invalid, a
// new capture makes it valid again, and a revoked credential refuses the
// next run, typed. Neither password appears in any CLI output, API
// response, server log, data dir file or process argv.
func TestIMAPConnectorEndToEnd(t *testing.T) {
	password, password2 := newCanary(t), newCanary(t)
	srv := dovecottest.Start(t, imapLogin, password)
	subjects := []string{"Dinner on Friday?", "Invoice 2026-001", "Re: the plan"}
	for i, s := range subjects {
		srv.Append(t, "INBOX", dovecottest.Message{
			From: []string{"Bob <bob@example.org>"}, To: []string{imapLogin}, Subject: s,
			MessageID: fmt.Sprintf("<m%d@example.org>", i+1), Date: time.Date(2026, 1, 2, 3, 4+i, 5, 0, time.UTC),
			Text: "body " + s + "\n",
		}.Bytes())
	}
	h := newHarness(t, "imap")
	h.okLocal("keyset", "init", "--data-dir", h.dataDir, "--kek-file", h.kekFile)
	h.start("IMAP_USERNAME=", "IMAP_PASSWORD=")
	argv := watchArgv(t, h, password, password2)

	var connectors []apitypes.Connector
	h.okJSON(&connectors, "connector", "list")
	if i := slices.IndexFunc(connectors, func(c apitypes.Connector) bool { return c.ConnectorKey == "imap" }); i < 0 ||
		connectors[i].Auth.Kind != "static_secret" || !slices.Equal(connectors[i].Auth.Required, []string{"IMAP_USERNAME", "IMAP_PASSWORD"}) {
		t.Fatalf("connector list -o json = %+v, want imap requiring IMAP_USERNAME and IMAP_PASSWORD", connectors)
	}
	config := fmt.Sprintf(`{"host":%q,"port":%d,"ca_file":%q}`, srv.Host, srv.TLSPort, srv.CAFile)
	var conn apitypes.Connection
	h.okJSON(&conn, "connection", "create", "--connector", "imap", "--label", "mail", "--schedule", "@every 2s", "--config", config)
	id := conn.ID

	credentialLines := func(pw string) string {
		return "# the mail account\nIMAP_USERNAME=" + imapLogin + "\nIMAP_PASSWORD=" + pw + "\n"
	}
	showCredential := func(t *testing.T) apitypes.Credential {
		t.Helper()
		var cred apitypes.Credential
		h.okJSON(&cred, "credential", "show", id)
		return cred
	}
	wantValid := func(t *testing.T, what string) {
		t.Helper()
		cred := showCredential(t)
		if !cred.Present || cred.State != "active" || cred.Validity == nil || !cred.Validity.Valid {
			t.Fatalf("%s: credential show = %+v, want present, active and valid", what, cred)
		}
		if want := "valid for " + imapconn.Identity(imapLogin, srv.Host); cred.Validity.Message != want {
			t.Errorf("%s: validity message = %q, want the identity: %q", what, cred.Validity.Message, want)
		}
		if names := slices.Sorted(slices.Values(cred.Names)); !slices.Equal(names, []string{"IMAP_PASSWORD", "IMAP_USERNAME"}) {
			t.Errorf("%s: credential names = %v", what, cred.Names)
		}
	}
	// runFollow runs the connection with --follow -o json and returns the
	// final run and the exit status.
	runFollow := func(t *testing.T) (apitypes.Run, int) {
		t.Helper()
		res := h.cli("", "run", id, "--follow", "-o", "json")
		var run apitypes.Run
		if err := json.Unmarshal([]byte(res.stdout), &run); err != nil {
			t.Fatalf("run --follow -o json: %v (exit %d)\nstdout:\n%s\nstderr:\n%s", err, res.code, res.stdout, res.stderr)
		}
		return run, res.code
	}

	t.Run("TwoValueCredentialFromStdin", func(t *testing.T) {
		var cred apitypes.Credential
		if err := json.Unmarshal([]byte(h.ok(credentialLines(password), "credential", "set", id, "-o", "json")), &cred); err != nil {
			t.Fatal(err)
		}
		if !cred.Present || cred.State != "active" {
			t.Errorf("credential set -o json = %+v", cred)
		}
		wantValid(t, "after capture")
	})

	t.Run("ScheduledRunWithEmptyHostEnvCollectsTheMailbox", func(t *testing.T) {
		h.eventually("a scheduled run succeeds", func() (bool, string) {
			runs := h.runs(id)
			for _, r := range runs {
				if r.Trigger != "scheduled" || !terminal(r.Status) {
					continue
				}
				if r.Status != "succeeded" {
					t.Fatalf("scheduled run with the stored credential = %+v", r)
				}
				return true, ""
			}
			return false, fmt.Sprintf("%+v", runs)
		})
		// Stop the schedule firing during the rest of the test, and let a
		// run it already started end.
		h.ok("", "connection", "update", id, "--schedule", "@every 24h")
		// A tick of the old schedule may already be queued: wait until no
		// run is active and none has appeared for longer than its period.
		quiet := -1
		h.eventually("no run active and none starting", func() (bool, string) {
			runs := h.runs(id)
			active := slices.ContainsFunc(runs, func(r apitypes.Run) bool { return !terminal(r.Status) })
			if active || len(runs) != quiet {
				quiet = len(runs)
				time.Sleep(3 * time.Second)
				return false, fmt.Sprintf("%+v", runs)
			}
			return true, ""
		})
		if got := messageSubjects(t, h, id); !slices.Equal(got, subjects) {
			t.Errorf("records list --stream messages: subjects %q, want %q", got, subjects)
		}
	})

	t.Run("ManualRunFollowedGoesOnWhereTheScheduledStopped", func(t *testing.T) {
		srv.Append(t, "INBOX", dovecottest.Message{From: []string{"Carol <carol@example.org>"}, To: []string{imapLogin},
			Subject: "Late arrival", Date: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), Text: "hi\n"}.Bytes())
		subjects = slices.Sorted(slices.Values(append(subjects, "Late arrival")))
		run, code := runFollow(t)
		if code != 0 || run.Status != "succeeded" || run.Trigger != "manual" || run.StreamRecords["messages"] != 1 {
			t.Fatalf("run --follow = %+v (exit %d), want a succeeded manual run of the one new message", run, code)
		}
		if got := messageSubjects(t, h, id); !slices.Equal(got, subjects) {
			t.Errorf("records list --stream messages: subjects %q, want %q", got, subjects)
		}
	})

	t.Run("ChangedPasswordIsARejectedCredential", func(t *testing.T) {
		srv.SetPassword(t, password2)
		run, code := runFollow(t)
		if code != 3 || run.Status != "failed" || run.FailureCode != failureRejected {
			t.Fatalf("run after the password change = %+v (exit %d), want failed %s, exit 3", run, code, failureRejected)
		}
		if cred := showCredential(t); cred.State != "active" || cred.Validity == nil || cred.Validity.Valid {
			t.Fatalf("credential show after the rejection = %+v, want active and invalid", cred)
		}
		if out := h.ok("", "credential", "show", id); !strings.Contains(out, "invalid: ") || !strings.Contains(out, "refused the login") {
			t.Errorf("credential show does not say why it is invalid:\n%s", out)
		}
	})

	t.Run("NewPasswordCapturedRunsAgain", func(t *testing.T) {
		h.ok(credentialLines(password2), "credential", "set", id)
		wantValid(t, "after the new capture")
		run, code := runFollow(t)
		if code != 0 || run.Status != "succeeded" {
			t.Fatalf("run with the new password = %+v (exit %d)", run, code)
		}
	})

	t.Run("RevokedCredentialRefusesTheLaunch", func(t *testing.T) {
		var cred apitypes.Credential
		h.okJSON(&cred, "credential", "revoke", id)
		if cred.State != "revoked" {
			t.Fatalf("credential revoke = %+v", cred)
		}
		res := h.cli("", "run", id, "--wait")
		if res.code != 3 || !strings.HasPrefix(res.stderr, "error: "+failureUnavailable+": ") {
			t.Fatalf("run after revoke: exit %d, stderr %q; want exit 3 with %s", res.code, res.stderr, failureUnavailable)
		}
		runs := h.runs(id)
		if last := runs[0]; last.Status != "refused" || last.FailureCode != failureUnavailable || last.StartedAt != "" {
			t.Errorf("newest run after revoke = %+v, want refused %s, never started", last, failureUnavailable)
		}
	})

	t.Run("NoRetryNoCredentialsRequired", func(t *testing.T) {
		for _, r := range h.runs(id) {
			if r.Trigger == "retry" || r.FailureCode == failureRequired {
				t.Errorf("run %+v: a rejected credential is never retried, and a stored one never asks for credentials", r)
			}
		}
	})

	api := apicall.Caller{T: t, Base: h.srv.addr, Auth: "Bearer " + readToken(t, h)}
	for _, path := range []string{"/v1/connections/" + id, "/v1/connections/" + id + "/credential",
		"/v1/connections/" + id + "/records?limit=500", "/v1/connections/" + id + "/checkpoint", "/v1/connectors/imap"} {
		h.record("GET "+path, string(api.OK(http.StatusOK, http.MethodGet, path, nil, nil).Body))
	}
	h.captureAPI()
	for _, pw := range []string{password, password2} {
		h.checkCanary(pw, "while serving")
	}
	h.stop()
	t.Run("PasswordsNeverLeak", func(t *testing.T) {
		for _, pw := range []string{password, password2} {
			h.checkCanary(pw, "after shutdown")
		}
		hits, children := argv.finish()
		if len(hits) > 0 {
			t.Errorf("a password was in the argv of: %v", hits)
		}
		if children == 0 {
			t.Log("argv check: no plugin child was seen while sampling; only other processes were checked")
		} else {
			t.Logf("argv check: %d plugin children sampled, no password in any argv", children)
		}
	})
}

// messageSubjects returns the subjects of `records list --stream messages`.
func messageSubjects(t *testing.T, h *harness, id string) []string {
	t.Helper()
	var records []apitypes.Record
	h.okJSON(&records, "records", "list", id, "--stream", "messages")
	var out []string
	for _, r := range records {
		var m struct {
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal(r.Data, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Subject)
	}
	slices.Sort(out)
	return out
}

func readToken(t *testing.T, h *harness) string {
	t.Helper()
	token, err := server.ReadToken(h.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// argvWatch samples the argv of every process on the machine until
// finish, noting any that holds a secret, and counting the plugin children
// of the test's server it saw (processes other than the server whose
// environment holds the harness's marker TMPDIR, as leftovers reads it).
type argvWatch struct {
	stop, done chan struct{}
	secrets    []string
	marker     []byte
	server     string // the server's pid

	mu       sync.Mutex
	hits     map[string]bool // "pid (comm)" of a process whose argv held a secret
	children map[string]bool // pids of plugin children seen
}

// watchArgv starts sampling every 2 ms for h's running server.
func watchArgv(t *testing.T, h *harness, secrets ...string) *argvWatch {
	t.Helper()
	w := &argvWatch{stop: make(chan struct{}), done: make(chan struct{}), secrets: secrets,
		marker: []byte("TMPDIR=" + h.marker + "\x00"), server: strconv.Itoa(h.srv.cmd.Process.Pid),
		hits: map[string]bool{}, children: map[string]bool{}}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			w.sample()
		}
	}()
	t.Cleanup(func() { w.finish() })
	return w
}

// sample reads every process's argv once.
func (w *argvWatch) sample() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid := e.Name()
		if _, err := strconv.Atoi(pid); err != nil || pid == self {
			continue
		}
		argv, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil {
			continue
		}
		held := slices.ContainsFunc(w.secrets, func(s string) bool { return bytes.Contains(argv, []byte(s)) })
		env, _ := os.ReadFile(filepath.Join("/proc", pid, "environ"))
		child := pid != w.server && bytes.Contains(append(env, 0), w.marker)
		if !held && !child {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		w.mu.Lock()
		if held {
			w.hits[pid+" ("+strings.TrimSpace(string(comm))+")"] = true
		}
		if child {
			w.children[pid] = true
		}
		w.mu.Unlock()
	}
}

// finish stops sampling and returns the processes whose argv held a
// secret and how many plugin children were seen.
func (w *argvWatch) finish() (hits []string, children int) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.hits {
		hits = append(hits, k)
	}
	slices.Sort(hits)
	return hits, len(w.children)
}
