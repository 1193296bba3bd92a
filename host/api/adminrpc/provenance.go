package adminrpc

import (
	"github.com/connhost/connhost/host/store"
	adminv1 "github.com/connhost/connhost/proto/admin/v1"
)

// provenanceToProto converts a run's launch provenance; nil stays nil.
// Names, layers, states and stamps: the store holds nothing else.
func provenanceToProto(p *store.Provenance) *adminv1.Provenance {
	if p == nil {
		return nil
	}
	out := &adminv1.Provenance{CredentialSource: p.CredentialSource}
	if c := p.Credential; c != nil {
		out.Credential = &adminv1.ProvenanceCredential{State: string(c.State), KeyId: c.KeyID, CapturedAt: stamp(c.CapturedAt),
			RotatedAt: stamp(c.RotatedAt), RevokedAt: stamp(c.RevokedAt), DeletedAt: stamp(c.DeletedAt)}
	}
	for _, v := range p.Env {
		out.Env = append(out.Env, &adminv1.EnvVar{Name: v.Name, Layer: string(v.Layer)})
	}
	if r := p.Refusal; r != nil {
		out.Refusal = &adminv1.Refusal{Code: string(r.Code), CredentialState: r.CredentialState, Undecryptable: r.Undecryptable,
			MissingNames: r.MissingNames, AbsentEnv: r.AbsentEnv, EmptyEnv: r.EmptyEnv, HostEnvDisallowed: r.HostEnvDisallowed}
	}
	return out
}
