package api

import (
	"context"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/explain"
	"github.com/connhost/connhost/host/store"
)

// Explainer says what a connection's next launch would do, without
// starting anything or decrypting (host/explain).
type Explainer interface {
	Explain(ctx context.Context, id string) (explain.Report, error)
}

// explainConnection serves GET /v1/connections/{id}/explain.
func (a *API) explainConnection(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Explainer == nil {
		return &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "this host cannot explain connections", "")}
	}
	rep, err := a.cfg.Explainer.Explain(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := toExplain(rep)
	if rep.Launch.Trigger == store.TriggerScheduled && rep.Connection.State == store.ConnectionActive {
		out.Launch.NextRun = stamp(a.nextRun(rep.Connection))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// toExplain converts an explanation.
func toExplain(rep explain.Report) apitypes.Explain {
	c := rep.Connection
	l := rep.Launch
	p := toProvenance(&l.Provenance)
	out := apitypes.Explain{
		ConnectionID: c.ID,
		ConnectorKey: c.ConnectorKey,
		State:        string(c.State),
		Enrollment: apitypes.EnrollmentEntry{ConnectionID: rep.Enrollment.ConnectionID, ConnectorKey: rep.Enrollment.ConnectorKey,
			Outcome: string(rep.Enrollment.Outcome), Reason: rep.Enrollment.Reason, EvaluatedAt: stamp(rep.Enrollment.EvaluatedAt)},
		Health: apitypes.ExplainHealth{Verdict: string(rep.Health.Verdict), Reason: rep.Health.Reason, Action: rep.Health.Action,
			Since: stamp(rep.Health.Since), NeedsPerson: rep.Health.NeedsPerson},
		Launch: apitypes.ExplainLaunch{Outcome: "launch", Trigger: string(l.Trigger), CredentialSource: p.CredentialSource,
			Credential: p.Credential, Env: p.Env, Refusal: p.Refusal, Notes: orEmpty(l.Notes)},
	}
	if rep.Reevaluation != nil {
		out.Reevaluation = liveEntry(*rep.Reevaluation)
	}
	if l.Refused() {
		out.Launch.Outcome = "refused"
		if out.Launch.Refusal == nil {
			out.Launch.Refusal = &apitypes.Refusal{}
		}
		out.Launch.Refusal.Code = string(l.Refusal.Code)
		out.Launch.Refusal.Message = l.Refusal.Message
	}
	return out
}

// toProvenance converts a run's provenance; nil stays nil.
func toProvenance(p *store.Provenance) *apitypes.Provenance {
	if p == nil {
		return nil
	}
	out := &apitypes.Provenance{CredentialSource: p.CredentialSource, Env: make([]apitypes.EnvVar, 0, len(p.Env))}
	if c := p.Credential; c != nil {
		out.Credential = &apitypes.ProvenanceCredential{State: string(c.State), KeyID: c.KeyID, CapturedAt: stamp(c.CapturedAt),
			RotatedAt: stamp(c.RotatedAt), RevokedAt: stamp(c.RevokedAt), DeletedAt: stamp(c.DeletedAt)}
	}
	for _, v := range p.Env {
		out.Env = append(out.Env, apitypes.EnvVar{Name: v.Name, Layer: string(v.Layer)})
	}
	if r := p.Refusal; r != nil {
		out.Refusal = &apitypes.Refusal{Code: string(r.Code), CredentialState: r.CredentialState, Undecryptable: r.Undecryptable,
			MissingNames: r.MissingNames, AbsentEnv: r.AbsentEnv, EmptyEnv: r.EmptyEnv, HostEnvDisallowed: r.HostEnvDisallowed}
	}
	return out
}
