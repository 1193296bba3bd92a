package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// provenanceJSON is how a run's provenance is stored: a versioned JSON
// document of names, layers, states and stamps.
type provenanceJSON struct {
	V                int              `json:"v"`
	CredentialSource string           `json:"credential_source,omitempty"`
	Credential       *credentialJSON  `json:"credential,omitempty"`
	Env              []envVarJSON     `json:"env,omitempty"`
	Refusal          *provRefusalJSON `json:"refusal,omitempty"`
}

type credentialJSON struct {
	State      string     `json:"state"`
	KeyID      uint32     `json:"key_id,omitempty"`
	CapturedAt *time.Time `json:"captured_at,omitempty"`
	RotatedAt  *time.Time `json:"rotated_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	DeletedAt  *time.Time `json:"deleted_at,omitempty"`
}

type envVarJSON struct {
	Name  string `json:"name"`
	Layer string `json:"layer"`
}

type provRefusalJSON struct {
	Code              string   `json:"code"`
	CredentialState   string   `json:"credential_state,omitempty"`
	Undecryptable     bool     `json:"undecryptable,omitempty"`
	MissingNames      []string `json:"missing_names,omitempty"`
	AbsentEnv         []string `json:"absent_env,omitempty"`
	EmptyEnv          []string `json:"empty_env,omitempty"`
	HostEnvDisallowed bool     `json:"host_env_disallowed,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// encodeProvenance renders p for the provenance column; nil is NULL.
func encodeProvenance(p *store.Provenance) (any, error) {
	if p == nil {
		return nil, nil
	}
	j := provenanceJSON{V: 1, CredentialSource: p.CredentialSource}
	if c := p.Credential; c != nil {
		j.Credential = &credentialJSON{State: string(c.State), KeyID: c.KeyID, CapturedAt: timePtr(c.CapturedAt),
			RotatedAt: timePtr(c.RotatedAt), RevokedAt: timePtr(c.RevokedAt), DeletedAt: timePtr(c.DeletedAt)}
	}
	for _, v := range p.Env {
		j.Env = append(j.Env, envVarJSON{Name: v.Name, Layer: string(v.Layer)})
	}
	if r := p.Refusal; r != nil {
		j.Refusal = &provRefusalJSON{Code: string(r.Code), CredentialState: r.CredentialState, Undecryptable: r.Undecryptable,
			MissingNames: r.MissingNames, AbsentEnv: r.AbsentEnv, EmptyEnv: r.EmptyEnv, HostEnvDisallowed: r.HostEnvDisallowed}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode provenance: %w", err)
	}
	return string(b), nil
}

// provenanceCol scans the provenance column; NULL scans as nil.
type provenanceCol struct{ p **store.Provenance }

func (c provenanceCol) Scan(src any) error {
	raw, err := jsonColumn(src, "provenance")
	if err != nil || raw == nil {
		*c.p = nil
		return err
	}
	var j provenanceJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	p := &store.Provenance{CredentialSource: j.CredentialSource}
	if cj := j.Credential; cj != nil {
		p.Credential = &store.ProvenanceCredential{State: store.CredentialState(cj.State), KeyID: cj.KeyID,
			CapturedAt: timeVal(cj.CapturedAt), RotatedAt: timeVal(cj.RotatedAt), RevokedAt: timeVal(cj.RevokedAt),
			DeletedAt: timeVal(cj.DeletedAt)}
	}
	for _, v := range j.Env {
		p.Env = append(p.Env, store.EnvVar{Name: v.Name, Layer: store.EnvLayer(v.Layer)})
	}
	if r := j.Refusal; r != nil {
		p.Refusal = &store.ProvenanceRefusal{Code: failure.Code(r.Code), CredentialState: r.CredentialState,
			Undecryptable: r.Undecryptable, MissingNames: r.MissingNames, AbsentEnv: r.AbsentEnv, EmptyEnv: r.EmptyEnv,
			HostEnvDisallowed: r.HostEnvDisallowed}
	}
	*c.p = p
	return nil
}
