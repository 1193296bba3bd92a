package explain_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/explain"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	"github.com/google/go-cmp/cmp"
)

const canary = "CANARY-explain-secret-5a91c7"

type rig struct {
	h   *hosttest.Host
	ex  *explain.Explainer
	env map[string]string
}

func newRig(t *testing.T, env map[string]string, allowEnv bool) *rig {
	t.Helper()
	h := hosttest.New(t, hosttest.Options{HostEnv: env, AllowHostEnv: allowEnv})
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	manifests := control.Manifests{Catalog: h.Catalog}
	ex, err := explain.New(explain.Config{
		Store: h.Store, Manifests: manifests, Gate: h.Gate,
		Health: &health.Assessor{Manifests: manifests, Credentials: h.Store, KeyHeld: h.Keyset.Info().Holds,
			HostEnv: lookup, AllowHostEnv: allowEnv},
		// The predictor gets key ids and metadata, never a keyset.
		Predictor: broker.Predictor{Credentials: h.Store, Keys: h.Keyset, HostEnv: lookup, AllowHostEnv: allowEnv},
		HostEnv: func() []string {
			var out []string
			for k, v := range env {
				out = append(out, k+"="+v)
			}
			return out
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{h: h, ex: ex, env: env}
}

func (r *rig) explain(t *testing.T, id string) explain.Report {
	t.Helper()
	rep, err := r.ex.Explain(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%+v", rep); strings.Contains(s, canary) {
		t.Fatalf("explain holds the canary: %s", s)
	}
	return rep
}

func baseEnv(token *string) map[string]string {
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "DEMO_LABEL": "lab"}
	if token != nil {
		env["DEMO_TOKEN"] = *token
	}
	return env
}

func ptr[T any](v T) *T { return &v }

// Issue 12: explain before and after a revoke — the stored credential,
// then the typed refusal naming when it was revoked — and the names it
// predicts are the names the run records.
func TestExplainBeforeAndAfterRevoke(t *testing.T) {
	t.Parallel()
	r := newRig(t, baseEnv(ptr("")), true)
	ctx := context.Background()
	conn := r.h.CreateDemo(map[string]any{"records": 1}, "@every 1h")
	r.h.SetToken(conn.ID, canary)

	before := r.explain(t, conn.ID)
	if before.Enrollment.Outcome != enroll.Enrolled || before.Launch.Refused() || before.Launch.Trigger != store.TriggerScheduled {
		t.Fatalf("before revoke: enrollment %+v, launch %+v", before.Enrollment, before.Launch)
	}
	if p := before.Launch.Provenance; p.CredentialSource != "stored" || p.Credential == nil ||
		p.Credential.State != store.CredentialActive || p.Credential.KeyID != r.h.Keyset.PrimaryKeyID() || p.Refusal != nil {
		t.Fatalf("before revoke: provenance %+v", p)
	}
	wantEnv := []store.EnvVar{
		{Name: "CONNHOST_CONNECTION_ID", Layer: store.LayerRunMetadata},
		{Name: "CONNHOST_RUN_ID", Layer: store.LayerRunMetadata},
		{Name: "CONNHOST_TRIGGER", Layer: store.LayerRunMetadata},
		{Name: "DEMO_LABEL", Layer: store.LayerPassthrough},
		{Name: "DEMO_TOKEN", Layer: store.LayerStoredCredential},
		{Name: "HOME", Layer: store.LayerAllowlist},
		{Name: "PATH", Layer: store.LayerAllowlist},
	}
	if diff := cmp.Diff(wantEnv, before.Launch.Provenance.Env); diff != "" {
		t.Fatalf("predicted env (-want +got):\n%s", diff)
	}
	// What explain predicted is what the launch records.
	run, err := r.h.RunNow(conn.ID)
	if err != nil || run.Status != store.RunSucceeded {
		t.Fatalf("manual run = %+v, %v", run, err)
	}
	got, err := r.h.Store.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&before.Launch.Provenance, got.Provenance); diff != "" {
		t.Fatalf("explain vs the run's provenance (-explain +run):\n%s", diff)
	}

	revoked, err := r.h.Control.RevokeCredential(ctx, "operator", conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	after := r.explain(t, conn.ID)
	l := after.Launch
	want := fmt.Sprintf("stored credential revoked at %s", revoked.RevokedAt.UTC().Format(time.RFC3339))
	if !l.Refused() || l.Refusal.Code != failure.StaticSecretUnavailable || !strings.Contains(l.Refusal.Message, want) {
		t.Fatalf("after revoke: refusal %v, want %s saying %q", l.Refusal, failure.StaticSecretUnavailable, want)
	}
	if p := l.Provenance; p.Refusal == nil || p.Refusal.CredentialState != "revoked" || len(p.Env) != 0 || p.CredentialSource != "" {
		t.Fatalf("after revoke: provenance %+v", p)
	}
	if after.Health.Verdict != health.CredentialUnavailable {
		t.Fatalf("after revoke: health %+v", after.Health)
	}
	// The refused run records the refusal explain predicted.
	refused, err := r.h.RunNow(conn.ID)
	if failure.CodeOf(err) != failure.StaticSecretUnavailable {
		t.Fatalf("run after revoke = %+v, %v", refused, err)
	}
	got, _ = r.h.Store.GetRun(ctx, refused.ID)
	if diff := cmp.Diff(&l.Provenance, got.Provenance); diff != "" {
		t.Fatalf("explain vs the refused run's provenance (-explain +run):\n%s", diff)
	}
	if got.FailureMessage != l.Refusal.Message {
		t.Fatalf("run refused with %q, explain said %q", got.FailureMessage, l.Refusal.Message)
	}
}

func TestExplainCases(t *testing.T) {
	t.Parallel()
	t.Run("host env credential", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, baseEnv(ptr(canary)), true)
		conn := r.h.CreateDemo(map[string]any{"records": 1}, "@every 1h")
		rep := r.explain(t, conn.ID)
		p := rep.Launch.Provenance
		if rep.Launch.Refused() || p.CredentialSource != "host_env" || p.Credential != nil {
			t.Fatalf("launch %+v", rep.Launch)
		}
		found := false
		for _, v := range p.Env {
			found = found || v == store.EnvVar{Name: "DEMO_TOKEN", Layer: store.LayerHostEnv}
		}
		if !found {
			t.Fatalf("DEMO_TOKEN not predicted from host_env: %+v", p.Env)
		}
	})
	t.Run("host env empty, nothing stored", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, baseEnv(ptr("")), true)
		conn := r.h.CreateDemo(map[string]any{"records": 1}, "@every 1h")
		rep := r.explain(t, conn.ID)
		if rep.Enrollment.Outcome != enroll.SkippedEnv || rep.Launch.Trigger != store.TriggerManual {
			t.Fatalf("enrollment %+v trigger %s", rep.Enrollment, rep.Launch.Trigger)
		}
		want := &store.ProvenanceRefusal{Code: failure.CredentialsRequired, CredentialState: "none", EmptyEnv: []string{"DEMO_TOKEN"}}
		if failure.CodeOf(rep.Launch.Refusal) != failure.CredentialsRequired || !cmp.Equal(want, rep.Launch.Provenance.Refusal) {
			t.Fatalf("launch %+v refusal %+v", rep.Launch, rep.Launch.Provenance.Refusal)
		}
		if rep.Health.Verdict != health.NeedsCredential {
			t.Fatalf("health %+v", rep.Health)
		}
	})
	t.Run("paused", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, baseEnv(nil), true)
		conn := r.h.CreateDemo(map[string]any{"records": 1}, "@every 1h")
		r.h.SetToken(conn.ID, canary)
		if _, err := r.h.Control.SetState(context.Background(), "operator", conn.ID, store.ConnectionPaused); err != nil {
			t.Fatal(err)
		}
		rep := r.explain(t, conn.ID)
		if rep.Enrollment.Outcome != enroll.SkippedPaused || failure.CodeOf(rep.Launch.Refusal) != failure.ConnectionPaused ||
			rep.Launch.Provenance.CredentialSource != "stored" || len(rep.Launch.Provenance.Env) == 0 {
			t.Fatalf("paused: enrollment %+v launch %+v", rep.Enrollment, rep.Launch)
		}
	})
	t.Run("revoked connection", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, baseEnv(nil), true)
		conn := r.h.CreateDemo(map[string]any{"records": 1}, "@every 1h")
		if _, err := r.h.Control.SetState(context.Background(), "operator", conn.ID, store.ConnectionRevoked); err != nil {
			t.Fatal(err)
		}
		rep := r.explain(t, conn.ID)
		if failure.CodeOf(rep.Launch.Refusal) != failure.ConnectionRevoked || len(rep.Launch.Provenance.Env) != 0 {
			t.Fatalf("revoked: launch %+v", rep.Launch)
		}
	})
	t.Run("unknown connection", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, baseEnv(nil), true)
		_, err := r.ex.Explain(context.Background(), "conn_missing")
		if failure.CodeOf(err) != failure.ConnectionNotFound {
			t.Fatalf("unknown connection: %v", err)
		}
	})
}

// Issue 12 (a user trial): right after a credential revoke the scheduler
// still has the connection's job — a revoke re-evaluates nothing, so the
// next scheduled run is refused visibly, then holds the schedule. Explain
// reports that enrollment in force and predicts that scheduled refused
// launch, with the gate's decision now beside it; once the refusal holds
// the schedule, skipped_held is in force; a capture enrolls it again and
// health waits for the next run rather than asking a person.
// Host env credentials are off while DEMO_TOKEN is set in the host env:
// nothing says the host env lacks it.
func TestExplainFollowsTheEnrollmentInForce(t *testing.T) {
	t.Parallel()
	r := newRig(t, baseEnv(ptr("host-token")), false)
	ctx := context.Background()
	conn := r.h.CreateDemo(map[string]any{"records": 1}, "@every 10m")
	r.h.SetToken(conn.ID, canary)

	before := r.explain(t, conn.ID)
	if before.Enrollment.Outcome != enroll.Enrolled || !before.EnrollmentStored || before.Reevaluation != nil ||
		before.Launch.Trigger != store.TriggerScheduled || before.Launch.Refused() {
		t.Fatalf("before revoke: enrollment %+v stored %v reevaluation %+v launch %+v", before.Enrollment, before.EnrollmentStored,
			before.Reevaluation, before.Launch)
	}

	if _, err := r.h.Control.RevokeCredential(ctx, "operator", conn.ID); err != nil {
		t.Fatal(err)
	}
	if !r.h.Scheduler.Enrolled(conn.ID) {
		t.Fatal("a revoke removed the job")
	}
	after := r.explain(t, conn.ID)
	l := after.Launch
	if after.Enrollment.Outcome != enroll.Enrolled || !after.EnrollmentStored {
		t.Fatalf("after revoke: enrollment %+v, want the one in force: enrolled (the scheduler has the job)", after.Enrollment)
	}
	if l.Trigger != store.TriggerScheduled || failure.CodeOf(l.Refusal) != failure.StaticSecretUnavailable {
		t.Fatalf("after revoke: launch %+v, want the scheduled one refused %s", l, failure.StaticSecretUnavailable)
	}
	re := after.Reevaluation
	if re == nil || re.Outcome != enroll.SkippedEnv || !strings.Contains(re.Reason, "host env credentials are turned off") ||
		strings.Contains(re.Reason, "lacks") {
		t.Fatalf("after revoke: reevaluation %+v, want skipped_env: host env credentials are turned off", re)
	}
	if !hasNote(l.Notes, "the next scheduled run is refused static_secret_credential_unavailable and recorded") {
		t.Fatalf("after revoke: notes %q lack the refusal that holds the schedule", l.Notes)
	}
	if after.Health.Verdict != health.CredentialUnavailable || !after.Health.NeedsPerson {
		t.Fatalf("after revoke: health %+v", after.Health)
	}

	// The scheduled run comes, refused as predicted, and holds the
	// schedule: skipped_held is in force, the gate agrees.
	r.h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		for _, run := range r.h.Finished(conn.ID) {
			if run.Trigger == store.TriggerScheduled && run.Status == store.RunRefused {
				return true
			}
		}
		return false
	})
	r.h.WaitFor(30*time.Second, func() bool { return r.explain(t, conn.ID).Enrollment.Outcome == enroll.SkippedHeld })
	held := r.explain(t, conn.ID)
	if held.Reevaluation != nil || held.Launch.Trigger != store.TriggerManual ||
		failure.CodeOf(held.Launch.Refusal) != failure.StaticSecretUnavailable || !hasNote(held.Launch.Notes, "the schedule is held") {
		t.Fatalf("held: reevaluation %+v launch %+v", held.Reevaluation, held.Launch)
	}

	// A capture releases the hold and re-enrolls at once; the run that
	// failed is behind it: health waits for the next run, asks nobody.
	r.h.Clock.Advance(time.Minute)
	r.h.SetToken(conn.ID, canary)
	fixed := r.explain(t, conn.ID)
	if fixed.Enrollment.Outcome != enroll.Enrolled || fixed.Reevaluation != nil || fixed.Launch.Refused() ||
		fixed.Launch.Trigger != store.TriggerScheduled {
		t.Fatalf("after a capture: enrollment %+v reevaluation %+v launch %+v", fixed.Enrollment, fixed.Reevaluation, fixed.Launch)
	}
	if h := fixed.Health; h.NeedsPerson || !strings.Contains(h.Reason, "changed since") {
		t.Fatalf("after a capture: health %+v, want no person needed until the next run", h)
	}
}

func hasNote(notes []string, want string) bool {
	for _, n := range notes {
		if strings.Contains(n, want) {
			return true
		}
	}
	return false
}
