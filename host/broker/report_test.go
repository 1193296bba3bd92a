package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"
)

// Resolve reports what it resolved, and Predict (no keyset, metadata
// only) reports the same resolution, code and message kind, for every
// credential situation it can see.
func TestResolveReportAndPredictAgree(t *testing.T) {
	t.Parallel()
	auth2 := manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"APP_USER", "APP_PASSWORD"}}
	type setup func(f *fixture, id string) (b *Broker, keys KeyInfo)
	keep := func(f *fixture, id string) (*Broker, KeyInfo) { return f.broker, f.ks }
	tests := map[string]struct {
		env      map[string]string
		allowEnv bool
		auth     manifest.Auth
		capture  map[string]string // nil: never stored
		setup    setup
		code     failure.Code
		want     Report // Credential stamps are ignored, state and key id checked
		names    []string
		says     string
	}{
		"stored, active": {
			env: map[string]string{"DEMO_TOKEN": ""}, allowEnv: true, auth: demoAuth,
			capture: map[string]string{"DEMO_TOKEN": canary}, setup: keep,
			want:  Report{Source: SourceStored, Credential: &store.ProvenanceCredential{State: store.CredentialActive}},
			names: []string{"DEMO_TOKEN"},
		},
		"stored, revoked": {
			env: map[string]string{"DEMO_TOKEN": "host-value"}, allowEnv: true, auth: demoAuth,
			capture: map[string]string{"DEMO_TOKEN": canary},
			setup: func(f *fixture, id string) (*Broker, KeyInfo) {
				if _, err := f.broker.Revoke(context.Background(), id, "operator"); err != nil {
					f.t.Fatal(err)
				}
				return f.broker, f.ks
			},
			code: failure.StaticSecretUnavailable, says: "stored credential revoked at ",
			want: Report{Credential: &store.ProvenanceCredential{State: store.CredentialRevoked},
				Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "revoked"}},
		},
		"stored, deleted": {
			allowEnv: true, auth: demoAuth, capture: map[string]string{"DEMO_TOKEN": canary},
			setup: func(f *fixture, id string) (*Broker, KeyInfo) {
				if _, err := f.broker.Delete(context.Background(), id, "operator"); err != nil {
					f.t.Fatal(err)
				}
				return f.broker, f.ks
			},
			code: failure.StaticSecretUnavailable, says: "stored credential deleted at ",
			want: Report{Credential: &store.ProvenanceCredential{State: store.CredentialDeleted},
				Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "deleted"}},
		},
		"stored, no keyset loaded": {
			allowEnv: true, auth: demoAuth, capture: map[string]string{"DEMO_TOKEN": canary},
			setup: func(f *fixture, id string) (*Broker, KeyInfo) { return f.newBroker(nil, true), nil },
			code:  failure.StaticSecretUnavailable, says: "no keyset is loaded",
			want: Report{Credential: &store.ProvenanceCredential{State: store.CredentialActive},
				Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "active", Undecryptable: true}},
		},
		"stored, another operator's keyset": {
			allowEnv: true, auth: demoAuth, capture: map[string]string{"DEMO_TOKEN": canary},
			setup: func(f *fixture, id string) (*Broker, KeyInfo) {
				other, err := keysets.Create(context.Background(), keysets.Config{
					Path: filepath.Join(f.dir, "other.json"), KEK: keysets.Cleartext(), Logger: hclog.NewNullLogger()})
				if err != nil {
					f.t.Fatal(err)
				}
				return f.newBroker(other, true), other
			},
			code: failure.StaticSecretUnavailable, says: "stored credential ",
			want: Report{Credential: &store.ProvenanceCredential{State: store.CredentialActive},
				Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "active", Undecryptable: true}},
		},
		"stored, lacks a required name": {
			allowEnv: true, auth: auth2, capture: map[string]string{"APP_USER": "user-value-1"}, setup: keep,
			code: failure.StaticSecretUnavailable, says: "lacks required names [APP_PASSWORD]",
			want: Report{Credential: &store.ProvenanceCredential{State: store.CredentialActive},
				Refusal: &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: "active", MissingNames: []string{"APP_PASSWORD"}}},
		},
		"never stored, host env provides": {
			env: map[string]string{"APP_USER": "u", "APP_PASSWORD": "p"}, allowEnv: true, auth: auth2, setup: keep,
			want: Report{Source: SourceHostEnv}, names: []string{"APP_PASSWORD", "APP_USER"},
		},
		"never stored, one absent and one empty": {
			env: map[string]string{"APP_USER": ""}, allowEnv: true, auth: auth2, setup: keep,
			code: failure.CredentialsRequired, says: "does not provide [APP_USER APP_PASSWORD]",
			want: Report{Refusal: &store.ProvenanceRefusal{Code: failure.CredentialsRequired, CredentialState: "none",
				AbsentEnv: []string{"APP_PASSWORD"}, EmptyEnv: []string{"APP_USER"}}},
		},
		"never stored, host env credentials off": {
			env: map[string]string{"DEMO_TOKEN": "host-value"}, auth: demoAuth, setup: keep,
			code: failure.CredentialsRequired, says: "turned off",
			want: Report{Refusal: &store.ProvenanceRefusal{Code: failure.CredentialsRequired, CredentialState: "none", HostEnvDisallowed: true}},
		},
		"connector needs no credential": {
			auth: manifest.Auth{Kind: manifest.AuthNone}, setup: keep, want: Report{Source: SourceNone},
		},
	}
	ignoreStamps := cmpopts.IgnoreFields(store.ProvenanceCredential{}, "CapturedAt", "RotatedAt", "RevokedAt", "DeletedAt", "KeyID")
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.hostEnv = tc.env
			f.broker = f.newBroker(f.ks, tc.allowEnv)
			id := f.connection()
			if tc.capture != nil {
				if _, err := f.broker.Capture(context.Background(), Capture{ConnectionID: id,
					Auth: manifest.Auth{Kind: manifest.AuthStaticSecret, Required: names(tc.capture)}, Values: tc.capture, Actor: "operator"}); err != nil {
					t.Fatal(err)
				}
			}
			b, keys := tc.setup(f, id)
			b.cfg.AllowHostEnv = tc.allowEnv
			target := Target{ConnectionID: id, Auth: tc.auth}

			res, err := b.Resolve(context.Background(), target)
			checkOutcome(t, "Resolve", err, tc.code, tc.says)
			if diff := cmp.Diff(tc.want, res.Report, ignoreStamps); diff != "" {
				t.Errorf("Resolve report (-want +got):\n%s", diff)
			}
			if tc.code == "" && !cmp.Equal(res.Names(), tc.names, cmpopts.EquateEmpty()) {
				t.Errorf("Resolve names = %v, want %v", res.Names(), tc.names)
			}
			if c := res.Report.Credential; c != nil && (c.KeyID == 0 || c.CapturedAt.IsZero()) {
				t.Errorf("report credential lacks key id or captured_at: %+v", c)
			}

			p := Predictor{Credentials: f.st, HostEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok },
				AllowHostEnv: tc.allowEnv}
			if keys != nil {
				p.Keys = keys
			}
			pr, err := p.Predict(context.Background(), target)
			checkOutcome(t, "Predict", err, tc.code, tc.says)
			if diff := cmp.Diff(tc.want, pr.Report, ignoreStamps); diff != "" {
				t.Errorf("Predict report (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(res.Report, pr.Report); diff != "" {
				t.Errorf("Predict and Resolve reports differ (-resolve +predict):\n%s", diff)
			}
			if !cmp.Equal(pr.Names, tc.names, cmpopts.EquateEmpty()) || pr.Source != res.Source {
				t.Errorf("Predict = source %q names %v; Resolve source %q, want names %v", pr.Source, pr.Names, res.Source, tc.names)
			}
			for _, s := range []string{fmt.Sprintf("%+v", res.Report), fmt.Sprintf("%+v", pr), f.logs.String()} {
				for _, secret := range []string{canary, "host-value", "user-value-1"} {
					if strings.Contains(s, secret) {
						t.Fatalf("a secret reached a report or log: %s", s)
					}
				}
			}
		})
	}
}

func checkOutcome(t *testing.T, fn string, err error, code failure.Code, says string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return
	}
	if failure.CodeOf(err) != code || !strings.Contains(err.Error(), says) {
		t.Fatalf("%s error = %v, want %s saying %q", fn, err, code, says)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("%s error leaks the canary", fn)
	}
}

func names(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}
