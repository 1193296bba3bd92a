package enroll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/google/go-cmp/cmp"
)

// fakePresence answers from a map. It also carries a decrypt path that
// fails the test if anything reaches it: the gate must decide on presence
// alone.
type fakePresence struct {
	t      *testing.T
	active map[string]bool
	// keyMissing: an active credential under a key the keyset lacks.
	keyMissing map[string]bool
	err        error
}

func (p *fakePresence) HasActiveCredential(_ context.Context, id string) (bool, error) {
	return p.active[id], p.err
}

func (p *fakePresence) KeyMissing(_ context.Context, id string) (uint32, bool, error) {
	return 77, p.keyMissing[id], p.err
}

// Resolve is the decrypt path; the gate has no way to call it, and this
// proves nothing tries (e.g. through a type assertion).
func (p *fakePresence) Resolve(context.Context, string) (map[string]string, error) {
	p.t.Fatal("eligibility touched the decrypt path")
	return nil, nil
}

var _ KeyedPresence = (*fakePresence)(nil)

type manifests map[string]manifest.Manifest

func (m manifests) Manifest(k string) (manifest.Manifest, bool) { v, ok := m[k]; return v, ok }

func demoManifest(autoEnroll bool) manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey:    "demo",
		Version:         "1.0.0",
		Auth:            manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"DEMO_TOKEN"}},
		Streams:         []manifest.Stream{{Name: "events", KeyFields: []string{"id"}}},
		DefaultSchedule: manifest.Schedule{Spec: "@every 1m", AutoEnroll: autoEnroll},
	}
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]struct {
		conn     Connection
		env      map[string]string
		active   bool
		keyMiss  bool
		allowEnv bool
		auto     bool
		presErr  error
		want     Outcome
		wantSpec string
		reason   string // a substring of the entry's reason, when set
	}{
		// The seed: "Env-free deployment auto-enrolls a store-backed connector".
		"env-free deployment auto-enrolls a store-backed connector (env absent)": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, active: true, allowEnv: true,
			want: Enrolled, wantSpec: "@every 1m",
		},
		"env-free deployment auto-enrolls a store-backed connector (env empty string)": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, active: true, allowEnv: true,
			env: map[string]string{"DEMO_TOKEN": ""}, want: Enrolled, wantSpec: "@every 1m",
		},
		"stored credential counts even when host env credentials are disallowed": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active", Schedule: "@every 5m"}, active: true,
			want: Enrolled, wantSpec: "@every 5m",
		},
		"no credential and env absent is skipped_env": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, allowEnv: true, want: SkippedEnv, wantSpec: "@every 1m",
			reason: "host env lacks DEMO_TOKEN",
		},
		"no credential and env empty string is skipped_env": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, allowEnv: true,
			env: map[string]string{"DEMO_TOKEN": ""}, want: SkippedEnv, wantSpec: "@every 1m",
		},
		"no credential, env set, env allowed": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, allowEnv: true,
			env: map[string]string{"DEMO_TOKEN": "x"}, want: Enrolled, wantSpec: "@every 1m",
		},
		// The host env holds DEMO_TOKEN: the reason must not say it lacks it.
		"no credential, env set, env disallowed": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true,
			env: map[string]string{"DEMO_TOKEN": "x"}, want: SkippedEnv, wantSpec: "@every 1m",
			reason: "no active stored credential, and host env credentials are turned off",
		},
		"paused":            {conn: Connection{ID: "c1", ConnectorKey: "demo", State: "paused"}, auto: true, active: true, want: SkippedPaused},
		"revoked":           {conn: Connection{ID: "c1", ConnectorKey: "demo", State: "revoked"}, auto: true, active: true, want: SkippedRevoked},
		"unknown connector": {conn: Connection{ID: "c1", ConnectorKey: "nope", State: "active"}, active: true, want: SkippedUnknownConnector},
		"no schedule and default does not auto-enroll": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, active: true, want: SkippedNoSchedule,
		},
		"own schedule overrides non-auto default": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active", Schedule: "*/5 * * * *"}, active: true,
			want: Enrolled, wantSpec: "*/5 * * * *",
		},
		"invalid schedule": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active", Schedule: "bogus"}, active: true, want: SkippedInvalidSchedule,
		},
		"an active credential under a key the keyset lacks is skipped, the host env notwithstanding": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, keyMiss: true, allowEnv: true,
			env: map[string]string{"DEMO_TOKEN": "x"}, want: SkippedKeyMissing, wantSpec: "@every 1m",
		},
		"presence error": {
			conn: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, auto: true, presErr: errors.New("db down"), want: SkippedPresenceError, wantSpec: "@every 1m",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := &Gate{
				Presence: &fakePresence{t: t, active: map[string]bool{"c1": tc.active}, keyMissing: map[string]bool{"c1": tc.keyMiss},
					err: tc.presErr},
				Manifests:    manifests{"demo": demoManifest(tc.auto)},
				HostEnv:      envOf(tc.env),
				AllowHostEnv: tc.allowEnv,
				CheckSpec: func(s string) error {
					if s == "bogus" {
						return errors.New("bad spec")
					}
					return nil
				},
				Now: func() time.Time { return now },
			}
			got := g.Evaluate(context.Background(), tc.conn)
			if got.Outcome != tc.want || got.Spec != tc.wantSpec {
				t.Fatalf("Evaluate = %+v, want outcome %s spec %q", got, tc.want, tc.wantSpec)
			}
			if tc.reason != "" && !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("reason %q lacks %q", got.Reason, tc.reason)
			}
			if strings.Contains(got.Reason, "lacks") && !tc.allowEnv {
				t.Fatalf("reason %q says the host env lacks a name while host env credentials are off", got.Reason)
			}
			if !got.EvaluatedAt.Equal(now) || got.ConnectionID != "c1" {
				t.Fatalf("entry metadata = %+v", got)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	got := Summary([]Entry{{Outcome: Enrolled}, {Outcome: SkippedEnv}, {Outcome: Enrolled}})
	if diff := cmp.Diff("enrolled=2 skipped_env=1", got); diff != "" {
		t.Fatal(diff)
	}
	if got := Summary(nil); got != "no connections" {
		t.Fatalf("Summary(nil) = %q", got)
	}
}

// A held connection is skipped with a typed outcome whose reason names
// the code, when, the refusal and what releases it; a paused or revoked
// state says more and wins; a hold wins over a missing connector (it
// says why and what to do).
func TestEvaluateHeld(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)
	g := &Gate{Presence: &fakePresence{t: t, active: map[string]bool{"c1": true}}, Manifests: manifests{"demo": demoManifest(true)},
		Now: func() time.Time { return at }}
	hold := func(code, msg string) Hold { return Hold{Code: code, Message: msg, At: at.Add(-time.Hour)} }
	for name, tc := range map[string]struct {
		c       Connection
		outcome Outcome
		want    []string
	}{
		"credential revoked": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "active",
			Hold: hold("static_secret_credential_unavailable", "stored credential revoked")},
			outcome: SkippedHeld, want: []string{"held after static_secret_credential_unavailable at 2026-05-01T11:30:00Z",
				"stored credential revoked", "capture a new credential"}},
		"credential rejected": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "active", Hold: hold("credential_rejected", "bad token")},
			outcome: SkippedHeld, want: []string{"held after credential_rejected", "capture a new credential"}},
		"credentials required": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "active", Hold: hold("credentials_required", "")},
			outcome: SkippedHeld, want: []string{"held after credentials_required", "capture a credential"}},
		"invalid config": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "active", Hold: hold("invalid_config", "records: too many")},
			outcome: SkippedHeld, want: []string{"held after invalid_config", "records: too many", "fix the connection's config"}},
		"connector missing": {c: Connection{ID: "c1", ConnectorKey: "gone", State: "active", Hold: hold("connector_not_found", "")},
			outcome: SkippedHeld, want: []string{"held after connector_not_found", "connector rescan"}},
		"paused wins": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "paused", Hold: hold("invalid_config", "")},
			outcome: SkippedPaused},
		"revoked wins": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "revoked", Hold: hold("invalid_config", "")},
			outcome: SkippedRevoked},
		"not held": {c: Connection{ID: "c1", ConnectorKey: "demo", State: "active"}, outcome: Enrolled},
	} {
		t.Run(name, func(t *testing.T) {
			e := g.Evaluate(context.Background(), tc.c)
			if e.Outcome != tc.outcome {
				t.Fatalf("outcome = %s (%s), want %s", e.Outcome, e.Reason, tc.outcome)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Reason, w) {
					t.Errorf("reason %q lacks %q", e.Reason, w)
				}
			}
		})
	}
}
