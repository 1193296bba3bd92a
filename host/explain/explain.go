// Package explain says what a connection's next launch would do, without
// starting anything and without decrypting.
//
// Explain walks the runner's launch steps (host/runner) in their order and
// answers each from what can be read without a secret:
//
//  1. the connection's state: a revoked connection is refused
//     connection_revoked; a paused one refuses scheduled launches
//     (connection_paused) while a manual run would still launch;
//  2. the catalog: a connector that is not there is refused
//     connector_not_found;
//  3. the credential: broker.Predictor applies the broker's resolution
//     policy to the stored credential's metadata (state, names, key id),
//     the loaded keyset's key ids and the host environment by presence,
//     and gives the source or the typed refusal Resolve would give;
//  4. the environment: launch.BuildEnvProvenance with the stored names
//     mapped to "" gives every child variable's name and layer, as the
//     run's provenance would record them.
//
// The launch predicted follows the enrollment IN FORCE — the stored entry
// of the latest evaluation, the one the scheduler acted on (what
// `connhost enrollment` shows) — not a fresh one: a credential revoke, for
// one, re-evaluates nothing, so a connection enrolled before it keeps its
// job, and its next launch is the scheduled one, refused (after which the
// refusal holds the schedule). When the enrollment gate (which sees
// presence only) decides otherwise now, the report adds its decision as
// what the next re-evaluation will put in force. It reports the
// connection's health (host/health) too.
//
// Invariant: nothing here holds a keyset or a ciphertext, so explain
// cannot decrypt, and its output holds names, layers, states and stamps
// only — never a value, a hash of one or a length. The one thing it
// cannot see is whether an active ciphertext under a held key opens; a
// note says so.
package explain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/manifest"
)

// Store reads connections and the enrollment in force.
type Store interface {
	GetConnection(ctx context.Context, id string) (store.Connection, error)
	EnrollmentOf(ctx context.Context, connectionIDs []string) (map[string]store.EnrollmentEntry, error)
}

// Manifests looks up a connector's manifest by key (the catalog).
type Manifests interface {
	Manifest(connectorKey string) (manifest.Manifest, bool)
}

// Gate is the enrollment gate (enroll.Gate).
type Gate interface {
	Evaluate(ctx context.Context, c enroll.Connection) enroll.Entry
}

// Assessor derives a connection's health (health.Assessor).
type Assessor interface {
	Assess(ctx context.Context, c store.Connection) (health.Health, error)
}

// Predictor predicts the broker's resolution (broker.Predictor).
type Predictor interface {
	Predict(ctx context.Context, t broker.Target) (broker.Prediction, error)
}

// Config configures an Explainer.
type Config struct {
	Store     Store
	Manifests Manifests
	Gate      Gate
	Health    Assessor
	Predictor Predictor
	// HostEnv returns the host environment the runner passes to
	// children (os.Environ form); only names reach the output.
	HostEnv func() []string
	// Allowlist is the runner's (launch.DefaultAllowlist when nil).
	Allowlist []string
}

// Validate reports a wiring error.
func (c *Config) Validate() error {
	if c.Store == nil || c.Manifests == nil || c.Gate == nil || c.Health == nil || c.Predictor == nil {
		return errors.New("explain: Config needs Store, Manifests, Gate, Health and Predictor")
	}
	return nil
}

// Explainer explains connections.
type Explainer struct{ cfg Config }

// New returns an Explainer.
func New(cfg Config) (*Explainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HostEnv == nil {
		cfg.HostEnv = func() []string { return nil }
	}
	if cfg.Allowlist == nil {
		cfg.Allowlist = launch.DefaultAllowlist
	}
	return &Explainer{cfg: cfg}, nil
}

// Report is the explanation of one connection.
type Report struct {
	Connection store.Connection
	// Enrollment is the enrollment in force: the stored entry the
	// scheduler acted on. When none is stored yet it is the gate's
	// decision now, and EnrollmentStored is false.
	Enrollment       enroll.Entry
	EnrollmentStored bool
	// Reevaluation is the gate's decision now, when it differs from the
	// enrollment in force (outcome or reason): what the next
	// re-evaluation — a change to the connection, a credential capture,
	// a run that holds it, a restart — will put in force. nil when they
	// agree.
	Reevaluation *enroll.Entry
	Health       health.Health
	Launch       Launch
}

// Launch is the predicted next launch.
type Launch struct {
	// Trigger is the launch predicted: scheduled when the gate enrolls
	// the connection, manual otherwise.
	Trigger store.RunTrigger
	// Refusal is the typed refusal the launch would meet (nil: it would
	// start a child).
	Refusal *failure.Error
	// Provenance is what the run would record: source, credential, env
	// names and layers, or the refusing resolution.
	Provenance store.Provenance
	// Notes say what a prediction without decrypting cannot see.
	Notes []string
}

// Refused reports whether the launch would be refused.
func (l Launch) Refused() bool { return l.Refusal != nil }

// Explain explains the connection id; store.ErrConnectionNotFound
// (connection_not_found) for an unknown one.
func (e *Explainer) Explain(ctx context.Context, id string) (Report, error) {
	c, err := e.cfg.Store.GetConnection(ctx, id)
	if err != nil {
		return Report{}, err
	}
	r := Report{Connection: c}
	fresh := e.cfg.Gate.Evaluate(ctx, control.GateInput(c))
	inForce, stored, err := e.inForce(ctx, c.ID)
	if err != nil {
		return Report{}, fmt.Errorf("explain: enrollment of %s: %w", c.ID, err)
	}
	r.Enrollment, r.EnrollmentStored = fresh, stored
	if stored {
		r.Enrollment = inForce
		if inForce.Outcome != fresh.Outcome || inForce.Reason != fresh.Reason {
			r.Reevaluation = &fresh
		}
	}
	if r.Health, err = e.cfg.Health.Assess(ctx, c); err != nil {
		return Report{}, fmt.Errorf("explain: health of %s: %w", c.ID, err)
	}
	r.Launch, err = e.launch(ctx, c, r.Enrollment)
	if err != nil {
		return Report{}, err
	}
	if !stored {
		r.Launch.Notes = append(r.Launch.Notes, "no enrollment is stored for the connection yet: the enrollment shown is the gate's decision now")
	}
	return r, nil
}

// inForce reads the stored enrollment entry of connection id.
func (e *Explainer) inForce(ctx context.Context, id string) (enroll.Entry, bool, error) {
	entries, err := e.cfg.Store.EnrollmentOf(ctx, []string{id})
	if err != nil {
		return enroll.Entry{}, false, err
	}
	en, ok := entries[id]
	if !ok {
		return enroll.Entry{}, false, nil
	}
	return enroll.Entry{ConnectionID: en.ConnectionID, ConnectorKey: en.ConnectorKey, Outcome: enroll.Outcome(en.Outcome),
		Reason: en.Reason, EvaluatedAt: en.EvaluatedAt}, true, nil
}

// launch follows the runner's steps without taking any of them.
func (e *Explainer) launch(ctx context.Context, c store.Connection, en enroll.Entry) (Launch, error) {
	l := Launch{Trigger: store.TriggerManual, Notes: []string{}}
	if en.Outcome == enroll.Enrolled {
		l.Trigger = store.TriggerScheduled
	}
	// 1. The connection.
	switch c.State {
	case store.ConnectionRevoked:
		l.Refusal = failure.New(failure.ConnectionRevoked, "connection %s is revoked", c.ID)
		return l, nil
	case store.ConnectionPaused:
		l.Trigger = store.TriggerScheduled
		l.Refusal = failure.New(failure.ConnectionPaused, "connection %s is paused", c.ID)
		l.Notes = append(l.Notes, "scheduled launches are refused while the connection is paused; a manual run still launches")
	}
	if c.Hold.Held() && c.State == store.ConnectionActive {
		l.Notes = append(l.Notes, fmt.Sprintf("the schedule is held after %s at %s: no scheduled run is created until the cause is addressed; a manual run still launches",
			c.Hold.Code, c.Hold.At.UTC().Format(time.RFC3339)))
	}
	if !c.BackoffUntil.IsZero() && c.State == store.ConnectionActive {
		l.Notes = append(l.Notes, fmt.Sprintf("the schedule backs off after repeated failures: no scheduled run before %s",
			c.BackoffUntil.UTC().Format(time.RFC3339)))
	}
	// 2. The connector.
	m, ok := e.cfg.Manifests.Manifest(c.ConnectorKey)
	if !ok {
		l.Refusal = failure.New(failure.ConnectorNotFound, "connector %q is not in the catalog", c.ConnectorKey)
		if l.Trigger == store.TriggerScheduled && c.State == store.ConnectionActive {
			l.Notes = append(l.Notes, fmt.Sprintf("the next scheduled run is refused %s and recorded; the refusal then holds the schedule: no further scheduled run until the connector is back",
				failure.ConnectorNotFound))
		}
		return l, nil
	}
	// 3. The credential, by presence.
	pr, err := e.cfg.Predictor.Predict(ctx, broker.Target{ConnectionID: c.ID, Auth: m.Auth})
	l.Provenance = store.Provenance{CredentialSource: string(pr.Report.Source), Credential: pr.Report.Credential,
		Refusal: pr.Report.Refusal}
	if err != nil {
		var fe *failure.Error
		if !errors.As(err, &fe) {
			return Launch{}, fmt.Errorf("explain: credential of %s: %w", c.ID, err)
		}
		if l.Refusal != nil { // paused: a manual run would meet this one
			l.Notes = append(l.Notes, fmt.Sprintf("a manual run would be refused %s: %s", fe.Code, fe.Message))
			return l, nil
		}
		l.Refusal = fe
		if l.Trigger == store.TriggerScheduled && store.IsHoldCode(fe.Code) {
			l.Notes = append(l.Notes, fmt.Sprintf("the next scheduled run is refused %s and recorded; the refusal then holds the schedule: no further scheduled run until the cause is addressed",
				fe.Code))
		}
		return l, nil
	}
	if pr.Source == broker.SourceStored {
		l.Notes = append(l.Notes, "presence only: the stored ciphertext is not opened; one that does not decrypt would still be refused static_secret_credential_unavailable at launch")
	}
	// 4. The environment, names and layers only.
	stored := map[string]string{}
	if pr.Source == broker.SourceStored {
		for _, n := range pr.Names {
			stored[n] = ""
		}
	}
	_, origins := launch.BuildEnvProvenance(e.cfg.HostEnv(), launch.EnvSpec{
		Allowlist:    e.cfg.Allowlist,
		Passthrough:  m.EnvPassthrough,
		AuthRequired: m.Auth.Required,
		Source:       launch.CredentialSource(pr.Source),
		Credential:   stored,
		ConnectionID: c.ID,
		RunID:        "next", // a placeholder: only names leave this function
		Trigger:      string(l.Trigger),
	})
	for _, o := range origins {
		l.Provenance.Env = append(l.Provenance.Env, store.EnvVar{Name: o.Name, Layer: store.EnvLayer(o.Layer)})
	}
	return l, nil
}
