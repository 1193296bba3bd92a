package adminrpc

import (
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	adminv1 "github.com/connhost/connhost/proto/admin/v1"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
)

func TestProvenanceToProto(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := map[string]struct {
		in   *store.Provenance
		want *adminv1.Provenance
	}{
		"none": {},
		"launched from the stored credential": {
			in: &store.Provenance{CredentialSource: "stored",
				Credential: &store.ProvenanceCredential{State: store.CredentialActive, KeyID: 9, CapturedAt: at},
				Env:        []store.EnvVar{{Name: "DEMO_TOKEN", Layer: store.LayerStoredCredential}, {Name: "PATH", Layer: store.LayerAllowlist}}},
			want: &adminv1.Provenance{CredentialSource: "stored",
				Credential: &adminv1.ProvenanceCredential{State: "active", KeyId: 9, CapturedAt: "2026-01-02T02:04:05Z"},
				Env:        []*adminv1.EnvVar{{Name: "DEMO_TOKEN", Layer: "stored_credential"}, {Name: "PATH", Layer: "allowlist"}}},
		},
		"refused": {
			in: &store.Provenance{Refusal: &store.ProvenanceRefusal{Code: failure.CredentialsRequired, CredentialState: "none",
				AbsentEnv: []string{"A"}, EmptyEnv: []string{"B"}, HostEnvDisallowed: true, Undecryptable: true, MissingNames: []string{"C"}}},
			want: &adminv1.Provenance{Refusal: &adminv1.Refusal{Code: "credentials_required", CredentialState: "none",
				AbsentEnv: []string{"A"}, EmptyEnv: []string{"B"}, HostEnvDisallowed: true, Undecryptable: true, MissingNames: []string{"C"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, provenanceToProto(tc.in), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
