package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/plugins/imap/dovecottest"
	"github.com/connhost/connhost/plugins/imap/imapconn"
)

// The IMAP connector's credential is two values, IMAP_USERNAME and
// IMAP_PASSWORD; both passwords below are canaries.
const (
	imapUser      = "alice@example.org" // 8 bytes at least: the broker stores no shorter value
	imapPassword  = "CANARY-imap-app-password-5b0d1e"
	imapPassword2 = "CANARY-imap-new-password-93ac47"
	imapPlugin    = "github.com/connhost/connhost/plugins/imap"
)

// imapHostEnv is a host environment with the IMAP credential names set to
// the given values (absent when nil).
func imapHostEnv(user, password *string) map[string]string {
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")}
	if user != nil {
		env["IMAP_USERNAME"] = *user
	}
	if password != nil {
		env["IMAP_PASSWORD"] = *password
	}
	return env
}

// newIMAPHost assembles a host with the imap plugin catalogued, host env
// credentials allowed (so only the stored-wins rule keeps them out).
func newIMAPHost(t *testing.T, env map[string]string) *hosttest.Host {
	t.Helper()
	return hosttest.New(t, hosttest.Options{HostEnv: env, AllowHostEnv: true,
		Plugins: map[string]string{"imap": imapPlugin}})
}

// startDovecot starts a Dovecot for imapUser holding three messages in
// INBOX, and returns it with their subjects.
func startDovecot(t *testing.T, password string) (*dovecottest.Server, []string) {
	t.Helper()
	srv := dovecottest.Start(t, imapUser, password)
	var subjects []string
	for i, s := range []string{"Dinner on Friday?", "Invoice 2026-001", "Re: the plan"} {
		srv.Append(t, "INBOX", dovecottest.Message{
			From:      []string{"Bob <bob@example.org>"},
			To:        []string{imapUser},
			Subject:   s,
			MessageID: fmt.Sprintf("<m%d@example.org>", i+1),
			Date:      time.Date(2026, 1, 2, 3, 4+i, 5, 0, time.UTC),
			Text:      "body " + s + "\n",
		}.Bytes())
		subjects = append(subjects, s)
	}
	return srv, subjects
}

// createIMAP creates an imap connection against srv over implicit TLS
// with the given schedule.
func createIMAP(t *testing.T, h *hosttest.Host, srv *dovecottest.Server, spec string) store.Connection {
	t.Helper()
	cfg := mustJSON(t, map[string]any{"host": srv.Host, "port": srv.TLSPort, "ca_file": srv.CAFile})
	c, _, err := h.Control.CreateConnection(context.Background(), "operator",
		store.NewConnection{ConnectorKey: "imap", Label: "mail", Config: cfg, Schedule: store.Schedule{Spec: spec}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setIMAPCredential captures (or rotates) both values in one call and
// returns the credential's metadata after the capture's Check.
func setIMAPCredential(t *testing.T, h *hosttest.Host, connID, user, password string) store.CredentialMeta {
	t.Helper()
	capture, err := h.Control.SetCredential(context.Background(), "operator", connID,
		map[string]string{"IMAP_USERNAME": user, "IMAP_PASSWORD": password}, []string{"IMAP_USERNAME", "IMAP_PASSWORD"})
	if err != nil {
		t.Fatal(err)
	}
	return capture.Credential
}

// wantValid fails unless meta says the credential was checked valid for
// the identity the connector's Check returns for imapUser on host: the
// login masked (the host redacts every credential value, the login too)
// and the server.
func wantValid(t *testing.T, what, host string, meta store.CredentialMeta) {
	t.Helper()
	if meta.Validity == nil || !meta.Validity.Valid {
		t.Fatalf("%s: validity = %+v, want valid", what, meta.Validity)
	}
	if want := "valid for " + imapconn.Identity(imapUser, host); meta.Validity.Message != want {
		t.Errorf("%s: validity message = %q, want the identity: %q", what, meta.Validity.Message, want)
	}
	if !slices.Equal(meta.Names, []string{"IMAP_PASSWORD", "IMAP_USERNAME"}) && !slices.Equal(meta.Names, []string{"IMAP_USERNAME", "IMAP_PASSWORD"}) {
		t.Fatalf("%s: credential names = %v, want IMAP_USERNAME and IMAP_PASSWORD", what, meta.Names)
	}
}

// messageSubjects returns the subjects of the connection's "messages"
// records.
func messageSubjects(t *testing.T, h *hosttest.Host, connID string) []string {
	t.Helper()
	page, err := h.Store.ListRecords(context.Background(), store.RecordQuery{ConnectionID: connID, Stream: "messages", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range page.Records {
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

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// The seed's scenarios with a two-value credential, through the real IMAP
// connector against a real Dovecot: the host env holds IMAP_USERNAME="" and
// IMAP_PASSWORD="", which must not shadow the stored values on the
// scheduled path; a password the server no longer accepts fails the run
// credential_rejected (no retry) and marks the credential invalid; a new
// capture makes it valid again; a revoked credential refuses the scheduled
// and the manual launch, typed, with no child started; and the password
// is nowhere the host writes.
func TestIMAPConnectorThroughTheHost(t *testing.T) {
	t.Parallel()
	srv, subjects := startDovecot(t, imapPassword)
	h := newIMAPHost(t, imapHostEnv(ptr(""), ptr("")))
	ctx := context.Background()
	c := createIMAP(t, h, srv, "@every 10m")

	// One capture of both values; the capture's Check logs in.
	wantValid(t, "after capture", srv.Host, setIMAPCredential(t, h, c.ID, imapUser, imapPassword))
	if !h.Scheduler.Enrolled(c.ID) {
		t.Fatal("the capture did not enroll the connection")
	}

	// A scheduled run: the child got the stored values, not the empty
	// host ones, and collected every message.
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunSucceeded) == 1
	})
	for _, r := range h.Finished(c.ID) {
		if r.Status != store.RunSucceeded {
			t.Fatalf("run %+v did not succeed before the password changed", r)
		}
	}
	wantStoredProvenance(t, h, findRun(t, h.Finished(c.ID), store.TriggerScheduled, store.RunSucceeded).ID)
	if got := messageSubjects(t, h, c.ID); !slices.Equal(got, sorted(subjects)) {
		t.Fatalf("messages after the scheduled run = %q, want %q", got, sorted(subjects))
	}

	// The server changes the password: the next scheduled run is a
	// rejected credential — not retried, the credential marked invalid.
	srv.SetPassword(t, imapPassword2)
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunFailed) == 1
	})
	rejected := findRun(t, h.Finished(c.ID), store.TriggerScheduled, store.RunFailed)
	if rejected.FailureCode != failure.CredentialRejected {
		t.Fatalf("run after the password change = %+v, want %s", rejected, failure.CredentialRejected)
	}
	if q := h.Queue(c.ID); len(q) != 0 {
		t.Fatalf("a rejected credential was queued for a retry: %+v", q)
	}
	if r := retries(h.Runs(c.ID)); len(r) != 0 {
		t.Fatalf("a rejected credential was retried: %+v", r)
	}
	meta, err := h.Store.GetCredentialMeta(ctx, c.ID)
	if err != nil || meta.Validity == nil || meta.Validity.Valid {
		t.Fatalf("validity after the rejection = %+v, %v; want invalid", meta.Validity, err)
	}

	// The new password captured: valid again, and a run succeeds.
	wantValid(t, "after the new capture", srv.Host, setIMAPCredential(t, h, c.ID, imapUser, imapPassword2))
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunSucceeded) == 2
	})
	manual, err := h.RunNow(c.ID)
	if err != nil || manual.Status != store.RunSucceeded {
		t.Fatalf("manual run with the new password = %+v, %v", manual, err)
	}
	if got := messageSubjects(t, h, c.ID); !slices.Equal(got, sorted(subjects)) {
		t.Fatalf("messages after the new capture = %q, want %q", got, sorted(subjects))
	}

	// Revoked: the scheduled launch and a manual one are refused, typed,
	// and no child starts for either.
	if _, err := h.Control.RevokeCredential(ctx, "operator", c.ID); err != nil {
		t.Fatal(err)
	}
	before := h.Launcher.Launches()
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunRefused) == 1
	})
	refused := findRun(t, h.Finished(c.ID), store.TriggerScheduled, store.RunRefused)
	if refused.FailureCode != failure.StaticSecretUnavailable || !refused.StartedAt.IsZero() {
		t.Fatalf("scheduled run after revoke = %+v, want refused %s, never started", refused, failure.StaticSecretUnavailable)
	}
	refusedManual, err := h.RunNow(c.ID)
	if failure.CodeOf(err) != failure.StaticSecretUnavailable || refusedManual.Status != store.RunRefused ||
		refusedManual.Trigger != store.TriggerManual {
		t.Fatalf("manual run after revoke = %+v, %v; want refused %s", refusedManual, err, failure.StaticSecretUnavailable)
	}
	if n := h.Launcher.Launches() - before; n != 0 {
		t.Fatalf("%d children started for refused launches", n)
	}
	if pids := demoProcesses(t, h.PluginDir); len(pids) != 0 {
		t.Fatalf("connector processes exist after refused launches: %v", pids)
	}

	checkIMAPCanaries(t, h, c.ID, imapPassword, imapPassword2)
}

// wantStoredProvenance fails unless the run's child got both IMAP values
// from the stored credential, the layer applied last.
func wantStoredProvenance(t *testing.T, h *hosttest.Host, runID string) {
	t.Helper()
	run, err := h.Store.GetRun(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	p := run.Provenance
	if p == nil || p.CredentialSource != "stored" {
		t.Fatalf("run %s provenance = %+v, want the stored credential", runID, p)
	}
	for _, name := range []string{"IMAP_USERNAME", "IMAP_PASSWORD"} {
		if !slices.Contains(p.Env, store.EnvVar{Name: name, Layer: store.LayerStoredCredential}) {
			t.Errorf("run %s: %s is not from the stored credential in %+v", runID, name, p.Env)
		}
	}
}

// retries returns the runs with trigger retry.
func retries(runs []store.Run) []store.Run {
	var out []store.Run
	for _, r := range runs {
		if r.Trigger == store.TriggerRetry {
			out = append(out, r)
		}
	}
	return out
}

// checkIMAPCanaries fails if any password appears in the host log, a run
// row, an audit row, the credential's metadata, the checkpoint or a
// record of the connection.
func checkIMAPCanaries(t *testing.T, h *hosttest.Host, connID string, passwords ...string) {
	t.Helper()
	ctx := context.Background()
	surfaces := map[string]string{"host log": h.Logs.String()}
	for _, r := range h.Runs(connID) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		surfaces["run "+r.ID] = string(b) + r.FailureMessage
	}
	audit, err := h.Store.ListAudit(ctx, store.AuditFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit.Events) == 0 {
		t.Fatal("no audit rows: the canary check would prove nothing")
	}
	for _, e := range audit.Events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		surfaces["audit "+e.ID] = string(b)
	}
	meta, err := h.Store.GetCredentialMeta(ctx, connID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	surfaces["credential meta"] = string(b)
	cp, ok, err := h.Store.GetCheckpoint(ctx, connID)
	if err != nil || !ok {
		t.Fatalf("checkpoint = %v, %v; want one after successful runs", ok, err)
	}
	surfaces["checkpoint"] = string(cp)
	page, err := h.Store.ListRecords(ctx, store.RecordQuery{ConnectionID: connID, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) == 0 {
		t.Fatal("no records: the canary check would prove nothing")
	}
	for _, r := range page.Records {
		surfaces["record "+r.Stream+"/"+r.Key] = r.Key + string(r.Data)
	}
	for what, text := range surfaces {
		for _, p := range passwords {
			if strings.Contains(text, p) {
				t.Errorf("a password reached the %s", what)
			}
		}
	}
}

// A stale but non-empty host value does not shadow the stored one either:
// the host env holds the old password (and another login) while the
// server only accepts the stored credential; runs on the scheduled and
// the manual path succeed, so the child got the stored values.
func TestIMAPStoredCredentialWinsOverHostEnv(t *testing.T) {
	t.Parallel()
	const stale = "CANARY-imap-stale-host-password-0e77"
	tests := map[string]map[string]string{
		"stale password, empty username": imapHostEnv(ptr(""), ptr(stale)),
		"stale password, other username": imapHostEnv(ptr("mallory"), ptr(stale)),
		"stale password, no username":    imapHostEnv(nil, ptr(stale)),
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, subjects := startDovecot(t, imapPassword)
			h := newIMAPHost(t, env)
			c := createIMAP(t, h, srv, "@every 10m")
			wantValid(t, "after capture", srv.Host, setIMAPCredential(t, h, c.ID, imapUser, imapPassword))
			h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(c.ID)) >= 1 })
			scheduled := h.Finished(c.ID)[0]
			if scheduled.Trigger != store.TriggerScheduled || scheduled.Status != store.RunSucceeded {
				t.Fatalf("scheduled run = %+v, want succeeded with the stored credential", scheduled)
			}
			wantStoredProvenance(t, h, scheduled.ID)
			manual, err := h.RunNow(c.ID)
			if err != nil || manual.Status != store.RunSucceeded {
				t.Fatalf("manual run = %+v, %v", manual, err)
			}
			if got := messageSubjects(t, h, c.ID); !slices.Equal(got, sorted(subjects)) {
				t.Fatalf("messages = %q, want %q", got, sorted(subjects))
			}
			checkIMAPCanaries(t, h, c.ID, imapPassword, stale)
		})
	}
}
