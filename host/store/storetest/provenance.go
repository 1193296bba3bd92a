package storetest

import (
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// testRunProvenance: a run's launch provenance round-trips through
// MarkRunRunning and FinishRun, on every read.
func testRunProvenance(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	captured := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rotated := captured.Add(90 * time.Minute)
	started := &store.Provenance{
		CredentialSource: "stored",
		Credential:       &store.ProvenanceCredential{State: store.CredentialActive, KeyID: 4021, CapturedAt: captured, RotatedAt: rotated},
		Env: []store.EnvVar{
			{Name: "CONNHOST_RUN_ID", Layer: store.LayerRunMetadata},
			{Name: "DEMO_LABEL", Layer: store.LayerPassthrough},
			{Name: "DEMO_TOKEN", Layer: store.LayerStoredCredential},
			{Name: "PATH", Layer: store.LayerAllowlist},
			{Name: "SECOND", Layer: store.LayerHostEnv},
		},
	}

	// Started with provenance; finishing without one keeps it.
	r := f.run(c.ID)
	f.lease(c.ID, r.ID, "host-a", time.Hour)
	running := must(f.s.MarkRunRunning(f.ctx, r.ID, started))(t)
	diff(t, "MarkRunRunning provenance", started, running.Provenance)
	diff(t, "GetRun provenance while running", started, must(f.s.GetRun(f.ctx, r.ID))(t).Provenance)
	fin := must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunSucceeded}))(t)
	diff(t, "FinishRun keeps the start's provenance", started, fin.Provenance)
	diff(t, "GetRun provenance after finish", started, must(f.s.GetRun(f.ctx, r.ID))(t).Provenance)
	page := must(f.s.ListRuns(f.ctx, store.RunFilter{ConnectionID: c.ID}))(t)
	if len(page.Runs) != 1 {
		t.Fatalf("ListRuns = %d runs", len(page.Runs))
	}
	diff(t, "ListRuns provenance", started, page.Runs[0].Provenance)

	// A refused launch stores the resolution that refused with its result.
	refusal := &store.Provenance{
		Credential: &store.ProvenanceCredential{State: store.CredentialRevoked, KeyID: 4021, CapturedAt: captured,
			RevokedAt: rotated, DeletedAt: rotated.Add(time.Hour)},
		Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "revoked", Undecryptable: true,
			MissingNames: []string{"APP_PASSWORD"}},
	}
	q := f.run(c.ID)
	fin = must(f.s.FinishRun(f.ctx, q.ID, store.RunResult{Status: store.RunRefused, FailureCode: failure.StaticSecretUnavailable,
		FailureMessage: "stored credential revoked", Provenance: refusal}))(t)
	diff(t, "refused FinishRun provenance", refusal, fin.Provenance)
	diff(t, "refused GetRun provenance", refusal, must(f.s.GetRun(f.ctx, q.ID))(t).Provenance)

	never := &store.Provenance{
		Refusal: &store.ProvenanceRefusal{Code: failure.CredentialsRequired, CredentialState: "none",
			AbsentEnv: []string{"APP_USER"}, EmptyEnv: []string{"APP_PASSWORD"}, HostEnvDisallowed: true},
	}
	n := f.run(c.ID)
	must(f.s.FinishRun(f.ctx, n.ID, store.RunResult{Status: store.RunRefused, FailureCode: failure.CredentialsRequired,
		FailureMessage: "needs a credential", Provenance: never}))(t)
	diff(t, "credentials_required provenance", never, must(f.s.GetRun(f.ctx, n.ID))(t).Provenance)

	// A run refused before resolution has none.
	z := f.run(c.ID)
	must(f.s.FinishRun(f.ctx, z.ID, store.RunResult{Status: store.RunRefused, FailureCode: failure.ConnectionRevoked, FailureMessage: "revoked"}))(t)
	if p := must(f.s.GetRun(f.ctx, z.ID))(t).Provenance; p != nil {
		t.Errorf("run refused before resolution has provenance %+v", p)
	}
}
