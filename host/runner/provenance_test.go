package runner_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/google/go-cmp/cmp"
)

// provenanceSecrets are what a provenance must never hold: the stored
// value, its hash, its length, and the host's other secret.
func provenanceSecrets() []string {
	return []string{canary, sha(canary), hostSecret, "different-non-empty-host-token"}
}

// rawProvenance reads the provenance column of a run as stored.
func rawProvenance(t *testing.T, h *hosttest.Host, runID string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.DataDir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var raw sql.NullString
	if err := db.QueryRow(`SELECT provenance FROM runs WHERE id = ?`, runID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	return raw.String
}

func checkNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range provenanceSecrets() {
		if strings.Contains(s, secret) {
			t.Fatalf("%s holds a secret (%.12s…): %s", where, secret, s)
		}
	}
	// Never a length either: no key names one.
	if strings.Contains(strings.ToLower(s), "len") {
		t.Fatalf("%s mentions a length: %s", where, s)
	}
}

// Issue 12: a scheduled, a retry and a manual run of one connection record
// the same provenance (names and layers; run metadata values are not
// recorded at all), and DEMO_TOKEN comes from the stored credential even
// when the host env holds DEMO_TOKEN="".
func TestProvenanceIsIdenticalOnEveryLaunchPath(t *testing.T) {
	t.Parallel()
	for name, token := range map[string]*string{"host env absent": nil, "host env empty string": ptr("")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(token), AllowHostEnv: true})
			ctx := context.Background()
			conn := h.CreateDemo(demoConfig(nil), "@every 1h")
			h.SetToken(conn.ID, canary)

			h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(conn.ID)) >= 1 })
			if _, _, err := h.Control.UpdateConnection(ctx, "operator", conn.ID, store.ConnectionPatch{
				Config: mustJSON(t, demoConfig(map[string]any{"records": 6, "fail_at": 1, "fail_triggers": []string{"scheduled"}})),
			}); err != nil {
				t.Fatal(err)
			}
			h.AdvanceUntil(time.Minute, 90*time.Second, func() bool {
				for _, r := range h.Runs(conn.ID) {
					if r.Trigger == store.TriggerRetry && r.Status.Terminal() {
						return true
					}
				}
				return false
			})
			manual, err := h.RunNow(conn.ID)
			if err != nil || manual.Status != store.RunSucceeded {
				t.Fatalf("manual run = %+v, %v", manual, err)
			}
			runs := map[string]store.Run{
				"scheduled":        findRun(t, h.Runs(conn.ID), store.TriggerScheduled, store.RunSucceeded),
				"scheduled failed": findRun(t, h.Runs(conn.ID), store.TriggerScheduled, store.RunFailed),
				"retry":            findRun(t, h.Runs(conn.ID), store.TriggerRetry, store.RunSucceeded),
				"manual":           manual,
			}

			meta, err := h.Store.GetCredentialMeta(ctx, conn.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := &store.Provenance{
				CredentialSource: "stored",
				Credential: &store.ProvenanceCredential{State: store.CredentialActive, KeyID: h.Keyset.PrimaryKeyID(),
					CapturedAt: meta.CapturedAt.UTC()},
				Env: []store.EnvVar{
					{Name: "CONNHOST_CONNECTION_ID", Layer: store.LayerRunMetadata},
					{Name: "CONNHOST_RUN_ID", Layer: store.LayerRunMetadata},
					{Name: "CONNHOST_TRIGGER", Layer: store.LayerRunMetadata},
					{Name: "DEMO_LABEL", Layer: store.LayerPassthrough},
					{Name: "DEMO_TOKEN", Layer: store.LayerStoredCredential},
					{Name: "HOME", Layer: store.LayerAllowlist},
					{Name: "PATH", Layer: store.LayerAllowlist},
				},
			}
			for label, run := range runs {
				got, err := h.Store.GetRun(ctx, run.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got.Provenance); diff != "" {
					t.Errorf("%s run %s provenance (-want +got):\n%s", label, run.ID, diff)
				}
				checkNoSecret(t, label+" run's stored provenance", rawProvenance(t, h, run.ID))
			}
			if len(runs) != 4 {
				t.Fatal("runs collapsed")
			}
		})
	}
}

// Issue 12: a launch refused over a revoked credential records the
// resolution that refused — the credential's state and when — and no
// environment, on the scheduled path and the manual one.
func TestRefusedLaunchRecordsTheRefusal(t *testing.T) {
	t.Parallel()
	h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(ptr("different-non-empty-host-token")), AllowHostEnv: true})
	ctx := context.Background()
	conn := h.CreateDemo(demoConfig(nil), "@every 1h")
	h.SetToken(conn.ID, canary)
	revoked, err := h.Control.RevokeCredential(ctx, "operator", conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(conn.ID)) >= 1 })
	scheduled := h.Finished(conn.ID)[0]
	manual, err := h.RunNow(conn.ID)
	if failure.CodeOf(err) != failure.StaticSecretUnavailable {
		t.Fatalf("manual run = %+v, %v", manual, err)
	}
	want := &store.Provenance{
		Credential: &store.ProvenanceCredential{State: store.CredentialRevoked, KeyID: h.Keyset.PrimaryKeyID(),
			CapturedAt: revoked.CapturedAt.UTC(), RevokedAt: revoked.RevokedAt.UTC()},
		Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "revoked"},
	}
	for label, run := range map[string]store.Run{"scheduled": scheduled, "manual": manual} {
		got, err := h.Store.GetRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunRefused || got.FailureCode != failure.StaticSecretUnavailable {
			t.Fatalf("%s run = %+v", label, got)
		}
		if diff := cmp.Diff(want, got.Provenance); diff != "" {
			t.Errorf("%s refused run provenance (-want +got):\n%s", label, diff)
		}
		if !strings.Contains(got.FailureMessage, "revoked at "+revoked.RevokedAt.UTC().Format(time.RFC3339)) {
			t.Errorf("%s refusal message %q does not say when the credential was revoked", label, got.FailureMessage)
		}
		raw := rawProvenance(t, h, run.ID)
		checkNoSecret(t, label+" refused run's stored provenance", raw)
		var doc map[string]any
		if err := json.Unmarshal([]byte(raw), &doc); err != nil || doc["env"] != nil {
			t.Fatalf("refused run's stored provenance has an env: %s (%v)", raw, err)
		}
	}
	// A refusal before the credential is resolved records none.
	if _, err := h.Control.SetState(ctx, "operator", conn.ID, store.ConnectionRevoked); err != nil {
		t.Fatal(err)
	}
	gone, _ := h.RunNow(conn.ID)
	if got, err := h.Store.GetRun(ctx, gone.ID); err != nil || got.Provenance != nil || got.FailureCode != failure.ConnectionRevoked {
		t.Fatalf("run of a revoked connection = %+v, %v; want refused without provenance", got, err)
	}
}
