package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
)

func outcomeOf(t *testing.T, h *hosttest.Host, id string) store.EnrollmentEntry {
	t.Helper()
	entries, err := h.Store.ListEnrollment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.ConnectionID == id {
			return e
		}
	}
	t.Fatalf("no enrollment entry for %s", id)
	return store.EnrollmentEntry{}
}

// hold holds the connection as a scheduled run refused with code would,
// and re-evaluates it as the runner's hook does.
func hold(t *testing.T, h *hosttest.Host, id string, code failure.Code) {
	t.Helper()
	ctx := context.Background()
	run, err := h.Store.CreateRun(ctx, store.NewRun{ConnectionID: id, Trigger: store.TriggerManual, HostID: "host_test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.FinishRun(ctx, run.ID, store.RunResult{Status: store.RunRefused, FailureCode: code,
		FailureMessage: "refused for the test", Hold: true}); err != nil {
		t.Fatal(err)
	}
	if e := h.Control.Reevaluate(ctx, id); e.Outcome != "skipped_held" || h.Scheduler.Enrolled(id) {
		t.Fatalf("a held connection re-evaluated: %+v (enrolled %v)", e, h.Scheduler.Enrolled(id))
	}
}

// A connector missing when a scheduled run launched holds the connection
// (connector_not_found); when it is back, ReleaseAddressedHolds — what a
// rescan and the boot call — releases the hold and re-enrolls it at once,
// and its next scheduled run succeeds. Through the real runner.
func TestConnectorBackReleasesItsHold(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 1}, "@every 10m")
	h.SetToken(c.ID, "tok-12345678")
	opts := catalog.Options{CheckSchedule: schedule.Check}
	empty, _ := catalog.Scan(ctx, t.TempDir(), h.Launcher.L, opts)
	full, errs := catalog.Scan(ctx, h.PluginDir, h.Launcher.L, opts)
	if len(errs) > 0 || full.Len() != 1 {
		t.Fatalf("catalog: %v", errs)
	}
	// The connector leaves while the job is enrolled (another host's
	// plugin dir, or a race with a rescan).
	h.Catalog.Replace(empty)
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(c.ID)) >= 1 })
	refused := h.Finished(c.ID)[0]
	if refused.Trigger != store.TriggerScheduled || refused.Status != store.RunRefused || refused.FailureCode != failure.ConnectorNotFound {
		t.Fatalf("run = %+v, want a scheduled run refused connector_not_found", refused)
	}
	// The hold's re-evaluation removes the job, then stores the entry:
	// wait for both.
	h.WaitFor(30*time.Second, func() bool {
		return !h.Scheduler.Enrolled(c.ID) && outcomeOf(t, h, c.ID).Outcome == store.SkippedHeld
	})

	// Still missing: nothing is released.
	if ids, err := h.Control.ReleaseAddressedHolds(ctx, "host"); err != nil || len(ids) != 0 {
		t.Fatalf("release while the connector is missing = %v, %v", ids, err)
	}
	h.Catalog.Replace(full)
	ids, err := h.Control.ReleaseAddressedHolds(ctx, "host")
	if err != nil || !slices.Equal(ids, []string{c.ID}) {
		t.Fatalf("release = %v, %v; want [%s]", ids, err, c.ID)
	}
	if !h.Scheduler.Enrolled(c.ID) || outcomeOf(t, h, c.ID).Outcome != store.Enrolled {
		t.Fatalf("not re-enrolled: %+v", outcomeOf(t, h, c.ID))
	}
	if got, _ := h.Store.GetConnection(ctx, c.ID); got.Hold.Held() {
		t.Fatalf("hold = %+v", got.Hold)
	}
	page, err := h.Store.ListAudit(ctx, store.AuditFilter{TargetID: c.ID, Limit: 100})
	if err != nil || !slices.ContainsFunc(page.Events, func(e store.AuditEvent) bool { return e.Operation == "connection.release_hold" }) {
		t.Fatalf("audit lacks connection.release_hold (%v)", err)
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		for _, r := range h.Finished(c.ID) {
			if r.Trigger == store.TriggerScheduled && r.Status == store.RunSucceeded {
				return true
			}
		}
		return false
	})
}

// Each operator action that addresses a hold re-enrolls the connection
// at once; one that does not leaves it held and skipped.
func TestOperatorActionsReleaseWhatTheyAddress(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 1}, "@every 10m")
	h.SetToken(c.ID, "tok-12345678")

	held := func(want bool) {
		t.Helper()
		e := outcomeOf(t, h, c.ID)
		if (e.Outcome == store.SkippedHeld) != want || h.Scheduler.Enrolled(c.ID) == want {
			t.Fatalf("enrollment %+v, enrolled %v; want held=%v", e, h.Scheduler.Enrolled(c.ID), want)
		}
	}
	// invalid_config: a label or a pause/resume does not address it; a
	// new config does.
	hold(t, h, c.ID, failure.InvalidConfig)
	label := "renamed"
	if _, _, err := h.Control.UpdateConnection(ctx, "operator", c.ID, store.ConnectionPatch{Label: &label}); err != nil {
		t.Fatal(err)
	}
	held(true)
	for _, st := range []store.ConnectionState{store.ConnectionPaused, store.ConnectionActive} {
		if _, err := h.Control.SetState(ctx, "operator", c.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	held(true)
	h.SetToken(c.ID, "tok-87654321") // a credential does not fix a config
	held(true)
	if _, _, err := h.Control.UpdateConnection(ctx, "operator", c.ID,
		store.ConnectionPatch{Config: json.RawMessage(`{"records":2}`)}); err != nil {
		t.Fatal(err)
	}
	held(false)

	// credential_rejected and static_secret_credential_unavailable: a new
	// config does not address them; a rotation or a capture does.
	for i, code := range []failure.Code{failure.CredentialRejected, failure.StaticSecretUnavailable} {
		hold(t, h, c.ID, code)
		if _, _, err := h.Control.UpdateConnection(ctx, "operator", c.ID,
			store.ConnectionPatch{Config: json.RawMessage(fmt.Sprintf(`{"records":%d}`, 3+i))}); err != nil {
			t.Fatal(err)
		}
		held(true)
		h.SetToken(c.ID, "tok-12345678")
		held(false)
	}
}

// A connection held credentials_required is released when the enrollment
// gate — presence only — would now enroll it but for the hold: the host
// env provides the names since a restart. Before that, nothing is.
func TestHostEnvReleasesACredentialsRequiredHold(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PATH": os.Getenv("PATH")}
	h := hosttest.New(t, hosttest.Options{HostEnv: env, AllowHostEnv: true})
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 1}, "@every 10m")
	hold(t, h, c.ID, failure.CredentialsRequired)

	if ids, err := h.Control.ReleaseAddressedHolds(ctx, "host"); err != nil || len(ids) != 0 {
		t.Fatalf("release while the host env lacks DEMO_TOKEN = %v, %v", ids, err)
	}
	if got, _ := h.Store.GetConnection(ctx, c.ID); got.Hold.Code != failure.CredentialsRequired {
		t.Fatalf("hold = %+v, want credentials_required kept", got.Hold)
	}
	// What the next start's environment holds (nothing runs meanwhile,
	// so no launch reads the map while it changes).
	env["DEMO_TOKEN"] = "host-token-12345678"
	ids, err := h.Control.ReleaseAddressedHolds(ctx, "host")
	if err != nil || !slices.Equal(ids, []string{c.ID}) {
		t.Fatalf("release = %v, %v; want [%s]", ids, err, c.ID)
	}
	if got, _ := h.Store.GetConnection(ctx, c.ID); got.Hold.Held() {
		t.Fatalf("hold = %+v", got.Hold)
	}
	if !h.Scheduler.Enrolled(c.ID) || outcomeOf(t, h, c.ID).Outcome != store.Enrolled {
		t.Fatalf("not re-enrolled: %+v", outcomeOf(t, h, c.ID))
	}
	page, err := h.Store.ListAudit(ctx, store.AuditFilter{TargetID: c.ID, Limit: 100})
	if err != nil || !slices.ContainsFunc(page.Events, func(e store.AuditEvent) bool {
		var d map[string]string
		return e.Operation == "connection.release_hold" && json.Unmarshal(e.Detail, &d) == nil &&
			d["hold_code"] == string(failure.CredentialsRequired)
	}) {
		t.Fatalf("audit lacks connection.release_hold of credentials_required (%v)", err)
	}
	// Another hold code is not the host env's to release.
	hold(t, h, c.ID, failure.InvalidConfig)
	if ids, err := h.Control.ReleaseAddressedHolds(ctx, "host"); err != nil || len(ids) != 0 {
		t.Fatalf("release of an invalid_config hold = %v, %v", ids, err)
	}
}

// Runs that failed plugin_checksum_mismatch back the connection off, and
// the fix is a rescan that pins the binary on disk again: the rescan (and
// the boot) lift the backoff of a connection whose connector was pinned
// after its failures began, audited connection.release_backoff; a
// catalog pinned before them, and any other failure code, keep it.
func TestRepinLiftsAChecksumBackoff(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	fail := func(id string, code failure.Code) store.Connection {
		t.Helper()
		for range 3 {
			run, err := h.Store.CreateRun(ctx, store.NewRun{ConnectionID: id, Trigger: store.TriggerManual, HostID: "host_test"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Store.FinishRun(ctx, run.ID, store.RunResult{Status: store.RunFailed, FailureCode: code,
				FailureMessage: "failed for the test", BackoffUntil: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		c, err := h.Store.GetConnection(ctx, id)
		if err != nil || c.BackoffUntil.IsZero() || c.Streak.FailCode != code {
			t.Fatalf("after 3 failures: %+v, %v", c, err)
		}
		return c
	}
	mismatch := fail(h.CreateDemo(map[string]any{"records": 1}, "@every 10m").ID, failure.PluginChecksumMismatch)
	other := fail(h.CreateDemo(map[string]any{"records": 1}, "@every 10m").ID, failure.ConnectorFailed)

	for _, tt := range []struct {
		name     string
		pinnedAt time.Time
		want     []string
	}{
		{"pinned before the failures", mismatch.Streak.FailSince.Add(-time.Hour), nil},
		{"pinned again after them", mismatch.Streak.FailSince.Add(time.Hour), []string{mismatch.ID}},
	} {
		cat, errs := catalog.Scan(ctx, h.PluginDir, h.Launcher.L, catalog.Options{CheckSchedule: schedule.Check,
			Now: func() time.Time { return tt.pinnedAt }})
		if len(errs) > 0 {
			t.Fatalf("%s: catalog: %v", tt.name, errs)
		}
		h.Catalog.Replace(cat)
		ids, err := h.Control.ReleaseAddressedHolds(ctx, "host")
		if err != nil || !slices.Equal(ids, tt.want) {
			t.Fatalf("%s: released %v, %v; want %v", tt.name, ids, err, tt.want)
		}
	}
	if got, _ := h.Store.GetConnection(ctx, mismatch.ID); !got.BackoffUntil.IsZero() {
		t.Fatalf("backoff kept after the repin: %v", got.BackoffUntil)
	}
	if got, _ := h.Store.GetConnection(ctx, other.ID); got.BackoffUntil.IsZero() {
		t.Fatal("a connector_failed backoff was lifted by a repin")
	}
	page, err := h.Store.ListAudit(ctx, store.AuditFilter{TargetID: mismatch.ID, Limit: 100})
	if err != nil || !slices.ContainsFunc(page.Events, func(e store.AuditEvent) bool { return e.Operation == "connection.release_backoff" }) {
		t.Fatalf("audit lacks connection.release_backoff (%v)", err)
	}
}
