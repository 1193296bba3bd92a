// Package health derives each connection's health: a verdict, the action
// it asks of an operator, and since when.
//
// The verdict is derived, never stored: it is read from facts the store
// changes in the same transaction as the event behind them — the
// connection's state, streak and hold (FinishRun), its stored credential's
// state and validity (capture, rotate, revoke, delete, check) — plus the
// catalog and the host environment. A read after an event therefore sees
// the verdict that event caused.
//
// Like the enrollment gate, health never decrypts: it reads credential
// metadata (state, key id, stamps, validity) and whether the loaded keyset
// holds a key id, and the host environment by presence only.
package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/manifest"
)

// Verdict is a connection's health.
type Verdict string

// Verdicts, in the order Derive tries them.
const (
	// Revoked: the connection is revoked and never runs again.
	Revoked Verdict = "revoked"
	// Paused: an operator paused it.
	Paused Verdict = "paused"
	// ConnectorMissing: its connector is not in the catalog.
	ConnectorMissing Verdict = "connector_missing"
	// CredentialUnavailable: its stored credential is revoked, deleted,
	// quarantined, undecryptable, or sealed under a key the loaded keyset
	// does not hold; the host env never stands in for it.
	CredentialUnavailable Verdict = "credential_unavailable"
	// CredentialRejected: the provider refused its credential.
	CredentialRejected Verdict = "credential_rejected"
	// NeedsCredential: its connector requires a credential and neither a
	// stored one nor the host environment provides it.
	NeedsCredential Verdict = "needs_credential"
	// InvalidConfig: the connector rejected its config.
	InvalidConfig Verdict = "invalid_config"
	// Failing: its latest runs failed, in a row, with one failure code.
	Failing Verdict = "failing"
	// NeverRun: it has not run yet.
	NeverRun Verdict = "never_run"
	// Healthy: its latest run succeeded.
	Healthy Verdict = "healthy"
)

// Verdicts lists every verdict (for metrics, which report zeros too).
var Verdicts = []Verdict{Healthy, NeverRun, Failing, InvalidConfig, NeedsCredential, CredentialRejected,
	CredentialUnavailable, ConnectorMissing, Paused, Revoked}

// AttentionAfter is how many failures in a row make a failing
// connection need a person (the schedule starts backing off there too).
const AttentionAfter = 3

// Health is a connection's derived health.
type Health struct {
	Verdict Verdict
	// Reason says why, without secrets.
	Reason string
	// Action is what an operator must do; "" when nothing.
	Action string
	// Since is when the condition began (zero when unknown).
	Since time.Time
	// NeedsPerson is set when only a person can make it healthy again:
	// such connections are on the attention list.
	NeedsPerson bool
}

// Facts is what Derive reads about one connection.
type Facts struct {
	Connection store.Connection
	// ConnectorKnown reports whether its connector is in the catalog.
	ConnectorKnown bool
	// AuthRequired is the manifest's static-secret capabilities.auth.required
	// (nil when the connector needs no credential).
	AuthRequired []string
	// Credential is the stored credential's metadata, nil when none was
	// ever stored.
	Credential *store.CredentialMeta
	// KeyHeld reports whether the loaded keyset holds Credential.KeyID.
	KeyHeld bool
	// HostEnvMissing are the AuthRequired names the host environment does
	// not provide non-empty (all of them when host env credentials are
	// off).
	HostEnvMissing []string
	// HostEnvOff is set when host env credentials are turned off
	// (serve --allow-host-env-credentials=false): the host environment
	// never satisfies auth, whatever it holds.
	HostEnvOff bool
}

// Derive returns the health the facts make.
func Derive(f Facts) Health {
	c := f.Connection
	id := c.ID
	switch c.State {
	case store.ConnectionRevoked:
		return Health{Verdict: Revoked, Reason: "the connection is revoked", Since: c.UpdatedAt,
			Action: fmt.Sprintf("none: a revoked connection never runs again (delete it with `connhost connection delete %s`)", id)}
	case store.ConnectionPaused:
		return Health{Verdict: Paused, Reason: "the connection is paused", Since: c.UpdatedAt,
			Action: fmt.Sprintf("resume it when it should run: `connhost connection resume %s`", id)}
	}
	if !f.ConnectorKnown {
		return Health{Verdict: ConnectorMissing, NeedsPerson: true, Since: began(c, failure.ConnectorNotFound, c.CreatedAt),
			Reason: fmt.Sprintf("connector %q is not in the catalog", c.ConnectorKey),
			Action: fmt.Sprintf("install connector %q in the plugin dir, then `connhost connector rescan`", c.ConnectorKey)}
	}
	capture := fmt.Sprintf("capture a new credential: `connhost credential set %s`", id)
	if len(f.AuthRequired) > 0 {
		if cr := f.Credential; cr != nil {
			switch cr.State {
			case store.CredentialRevoked:
				return unavailable(fmt.Sprintf("stored credential revoked at %s", stamp(cr.RevokedAt)), cr.RevokedAt, capture)
			case store.CredentialDeleted:
				return unavailable(fmt.Sprintf("stored credential deleted at %s", stamp(cr.DeletedAt)), cr.DeletedAt, capture)
			case store.CredentialQuarantined:
				return unavailable(fmt.Sprintf("stored credential quarantined at %s", stamp(cr.QuarantinedAt)), cr.QuarantinedAt, capture)
			case store.CredentialActive:
				if !f.KeyHeld {
					return unavailable(fmt.Sprintf("stored credential is sealed under key id %d, which the loaded keyset does not hold", cr.KeyID),
						began(c, failure.StaticSecretUnavailable, cr.UpdatedAt), fmt.Sprintf("load a keyset that holds key %d, or %s", cr.KeyID, capture))
				}
				if missing := lacking(cr.Names, f.AuthRequired); len(missing) > 0 {
					return unavailable(fmt.Sprintf("stored credential lacks required names %s", strings.Join(missing, ", ")),
						began(c, failure.StaticSecretUnavailable, cr.UpdatedAt), capture)
				}
				if c.Hold.Code == failure.StaticSecretUnavailable {
					return unavailable(c.Hold.Message, c.Hold.At, capture)
				}
				if v := cr.Validity; v != nil && !v.Valid {
					return Health{Verdict: CredentialRejected, NeedsPerson: true, Since: v.CheckedAt,
						Reason: orDefault(v.Message, "the provider rejected the stored credential"), Action: capture}
				}
			}
		} else if len(f.HostEnvMissing) > 0 {
			h := Health{Verdict: NeedsCredential, NeedsPerson: true, Since: began(c, failure.CredentialsRequired, c.CreatedAt),
				Reason: "no stored credential and the host environment lacks " + strings.Join(f.HostEnvMissing, ", "),
				Action: fmt.Sprintf("capture one: `connhost credential set %s`, or set %s in the host environment and restart",
					id, strings.Join(f.HostEnvMissing, ", "))}
			if f.HostEnvOff {
				// Whatever the host env holds, it does not count: offer
				// only what does.
				h.Reason = "no stored credential, and host env credentials are turned off"
				h.Action = fmt.Sprintf("capture one: `connhost credential set %s`", id)
			}
			return h
		}
		// A streak of rejections ends, for a person, when a credential
		// is captured or rotated after it: the next run tells.
		if c.Hold.Code == failure.CredentialRejected ||
			(c.Streak.FailCode == failure.CredentialRejected && c.Streak.FailCount > 0 && !credentialChangedSince(f.Credential, c.Streak.LastRunAt)) {
			since := c.Streak.FailSince
			if c.Hold.Held() {
				since = c.Hold.At
			}
			return Health{Verdict: CredentialRejected, NeedsPerson: true, Since: since,
				Reason: "the provider rejected the credential", Action: capture}
		}
	}
	// A streak of invalid_config ends, for a person, when the connection
	// is changed after it (updated_at: the failure itself does not stamp
	// it): the next run tells.
	if c.Hold.Code == failure.InvalidConfig ||
		(c.Streak.FailCode == failure.InvalidConfig && c.Streak.FailCount > 0 && !c.UpdatedAt.After(c.Streak.LastRunAt)) {
		since := c.Streak.FailSince
		if c.Hold.Held() {
			since = c.Hold.At
		}
		return Health{Verdict: InvalidConfig, NeedsPerson: true, Since: since,
			Reason: orDefault(c.Hold.Message, "the connector rejected the config"),
			Action: fmt.Sprintf("fix the config: `connhost connection update %s --config …`", id)}
	}
	if st := c.Streak; st.FailCount > 0 {
		h := Health{Verdict: Failing, Since: st.FailSince, NeedsPerson: st.FailCount >= AttentionAfter,
			Reason: fmt.Sprintf("%d consecutive %s of %s since %s", st.FailCount, plural(st.FailCount, "failure", "failures"),
				st.FailCode, stamp(st.FailSince)),
			Action: fmt.Sprintf("read the latest run: `connhost runs list --connection %s`", id)}
		if addressedSince(f) {
			// A person acted since: nothing more to ask of one until the
			// next run.
			h.NeedsPerson = false
			h.Reason += "; changed since: the next run tells"
			h.Action = fmt.Sprintf("wait for the next run, or start one: `connhost run %s`", id)
		}
		if !c.BackoffUntil.IsZero() {
			h.Reason += "; the schedule backs off until " + stamp(c.BackoffUntil)
		}
		return h
	}
	if c.Streak.LastRunStatus == "" {
		return Health{Verdict: NeverRun, Reason: "the connection has not run yet", Since: c.CreatedAt}
	}
	return Health{Verdict: Healthy, Reason: "the latest run succeeded", Since: c.Streak.LastRunAt}
}

// lacking returns the names of required that names lacks.
func lacking(names, required []string) []string {
	var out []string
	for _, n := range required {
		if !slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	return out
}

// began is the best evidence of when a condition that refuses or fails a
// launch with code began: the hold's At when the connection is held for
// code; else the start of its streak of code; else, for a connection that
// ran, its latest run (the condition began after a run that did not meet
// it) — but never before floor, the earliest the condition can have begun
// (the connection's creation, a credential's last seal).
func began(c store.Connection, code failure.Code, floor time.Time) time.Time {
	switch {
	case c.Hold.Code == code && !c.Hold.At.IsZero():
		return c.Hold.At
	case c.Streak.FailCode == code && c.Streak.FailCount > 0 && !c.Streak.FailSince.IsZero():
		return c.Streak.FailSince
	case c.Streak.LastRunStatus != "" && c.Streak.LastRunAt.After(floor):
		return c.Streak.LastRunAt
	}
	return floor
}

// addressedSince reports, for a connection whose latest runs failed with a
// code only a person can fix (store.HoldCodes), that the cause was
// addressed after the latest of them — its config changed, a credential
// captured or rotated, the host env now provides what was required, its
// connector back in the catalog — so the next run tells, and nothing is
// asked of a person until then. Derive reaches the failing verdict with
// such a streak only when it was addressed, or when nothing it can read
// says otherwise.
func addressedSince(f Facts) bool {
	c := f.Connection
	st := c.Streak
	if st.FailCount == 0 || c.Hold.Held() {
		return false
	}
	switch st.FailCode {
	case failure.InvalidConfig:
		return c.UpdatedAt.After(st.LastRunAt)
	case failure.CredentialRejected:
		// Derive reports credential_rejected unless a credential was
		// captured or rotated since (or none is required any more).
		return true
	case failure.StaticSecretUnavailable:
		return credentialChangedSince(f.Credential, st.LastRunAt)
	case failure.CredentialsRequired:
		return credentialChangedSince(f.Credential, st.LastRunAt) ||
			(f.Credential == nil && len(f.AuthRequired) > 0 && len(f.HostEnvMissing) == 0)
	case failure.ConnectorNotFound:
		return f.ConnectorKnown
	}
	return false
}

// credentialChangedSince reports a credential captured or rotated after t.
func credentialChangedSince(cr *store.CredentialMeta, t time.Time) bool {
	return cr != nil && cr.State == store.CredentialActive && (cr.CapturedAt.After(t) || cr.RotatedAt.After(t))
}

func unavailable(reason string, since time.Time, action string) Health {
	return Health{Verdict: CredentialUnavailable, NeedsPerson: true, Since: since,
		Reason: string(failure.StaticSecretUnavailable) + ": " + reason, Action: action}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Manifests looks up a connector's manifest by key.
type Manifests interface {
	Manifest(connectorKey string) (manifest.Manifest, bool)
}

// CredentialMetas reads credential metadata — never a ciphertext: one
// connection's, or many at once (store.Credentials.CredentialMetas).
type CredentialMetas interface {
	GetCredentialMeta(ctx context.Context, connectionID string) (store.CredentialMeta, error)
	CredentialMetas(ctx context.Context, connectionIDs []string) (map[string]store.CredentialMeta, error)
}

// Assessor gathers the facts of connections and derives their health.
type Assessor struct {
	Manifests   Manifests
	Credentials CredentialMetas
	// KeyHeld reports whether the loaded keyset holds a key id; nil means
	// no keyset is loaded.
	KeyHeld func(keyID uint32) bool
	// HostEnv looks up the host environment (os.LookupEnv in production).
	HostEnv func(string) (string, bool)
	// AllowHostEnv lets the host environment satisfy auth.
	AllowHostEnv bool
}

// Facts gathers what Derive needs about c.
func (a *Assessor) Facts(ctx context.Context, c store.Connection) (Facts, error) {
	f, needsCredential := a.facts(c)
	if !needsCredential {
		return f, nil
	}
	meta, err := a.Credentials.GetCredentialMeta(ctx, c.ID)
	switch {
	case err == nil:
		a.withCredential(&f, &meta)
	case errors.Is(err, store.ErrCredentialNotFound):
	default:
		return f, err
	}
	return f, nil
}

// facts gathers the facts of c that need no store read, and reports
// whether its credential metadata matters (its connector requires one).
func (a *Assessor) facts(c store.Connection) (Facts, bool) {
	f := Facts{Connection: c, HostEnvOff: !a.AllowHostEnv}
	m, ok := a.Manifests.Manifest(c.ConnectorKey)
	f.ConnectorKnown = ok
	if !ok || m.Auth.Kind != manifest.AuthStaticSecret || len(m.Auth.Required) == 0 {
		return f, false
	}
	f.AuthRequired = m.Auth.Required
	for _, n := range m.Auth.Required {
		v, ok := "", false
		if a.AllowHostEnv && a.HostEnv != nil {
			v, ok = a.HostEnv(n)
		}
		if !ok || v == "" {
			f.HostEnvMissing = append(f.HostEnvMissing, n)
		}
	}
	return f, true
}

// withCredential adds the stored credential's metadata to f.
func (a *Assessor) withCredential(f *Facts, meta *store.CredentialMeta) {
	f.Credential = meta
	f.KeyHeld = a.KeyHeld != nil && a.KeyHeld(meta.KeyID)
}

// AssessAll derives the health of each of conns, in order, with one
// batched credential metadata read (store.Credentials.CredentialMetas)
// for the connections whose connector requires a credential: a list page
// costs a bounded number of queries, not one per connection.
func (a *Assessor) AssessAll(ctx context.Context, conns []store.Connection) ([]Health, error) {
	facts := make([]Facts, len(conns))
	var ids []string
	for i, c := range conns {
		var need bool
		facts[i], need = a.facts(c)
		if need {
			ids = append(ids, c.ID)
		}
	}
	var metas map[string]store.CredentialMeta
	if len(ids) > 0 {
		var err error
		if metas, err = a.Credentials.CredentialMetas(ctx, ids); err != nil {
			return nil, err
		}
	}
	out := make([]Health, len(conns))
	for i := range facts {
		if meta, ok := metas[conns[i].ID]; ok {
			a.withCredential(&facts[i], &meta)
		}
		out[i] = Derive(facts[i])
	}
	return out, nil
}

// Assess derives c's health.
func (a *Assessor) Assess(ctx context.Context, c store.Connection) (Health, error) {
	f, err := a.Facts(ctx, c)
	if err != nil {
		return Health{}, err
	}
	return Derive(f), nil
}
