// Package enroll decides, for each connection, whether its schedule is
// enrolled at boot — and why not, when it is not.
//
// The auth requirement of a connector (capabilities.auth.required) is
// satisfied by a non-empty host environment value for every required name,
// or by an active stored credential. The stored credential is checked
// through Presence only: this package never sees a keyset, a ciphertext or
// a secret, so an eligibility check cannot decrypt by construction.
package enroll

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/connhost/connhost/sdk/manifest"
)

// Outcome is the enrollment decision for one connection.
type Outcome string

// Outcomes.
const (
	Enrolled                Outcome = "enrolled"
	SkippedEnv              Outcome = "skipped_env"
	SkippedPaused           Outcome = "skipped_paused"
	SkippedRevoked          Outcome = "skipped_revoked"
	SkippedNoSchedule       Outcome = "skipped_no_schedule"
	SkippedUnknownConnector Outcome = "skipped_unknown_connector"
	SkippedInvalidSchedule  Outcome = "skipped_invalid_schedule"
	SkippedPresenceError    Outcome = "skipped_presence_error"
	// SkippedKeyMissing: the connection's active stored credential is
	// sealed under a key the loaded keyset does not hold. It cannot be
	// resolved, and the host env does not stand in for it.
	SkippedKeyMissing Outcome = "skipped_key_missing"
	// SkippedHeld: a scheduled launch of the connection was refused or
	// rejected for a reason only a person can fix (store.HoldCodes), and
	// its schedule is held until the cause is addressed: a credential
	// captured or rotated, its config changed, its connector back.
	SkippedHeld Outcome = "skipped_held"
)

// Presence answers whether a connection holds an active stored credential
// the loaded keyset can decrypt. Implementations must not decrypt.
type Presence interface {
	HasActiveCredential(ctx context.Context, connectionID string) (bool, error)
}

// KeyedPresence is a Presence that also tells an active credential whose
// key the loaded keyset lacks (broker.Presence is one): the gate reports
// it as SkippedKeyMissing rather than falling back to the host env.
type KeyedPresence interface {
	Presence
	KeyMissing(ctx context.Context, connectionID string) (keyID uint32, missing bool, err error)
}

// Connection is what the gate needs to know about a connection.
type Connection struct {
	ID           string
	ConnectorKey string
	// State is "active", "paused" or "revoked".
	State string
	// Schedule is the connection's own spec; "" falls back to the
	// connector's default schedule when that auto-enrolls.
	Schedule string
	// Hold is set while the connection's schedule is held: the failure
	// code, its (non-secret) message and when.
	Hold Hold
}

// Hold is why and since when a connection's schedule is held.
type Hold struct {
	Code    string // "" when not held
	Message string
	At      time.Time
}

// Manifests looks up a connector's manifest by key.
type Manifests interface {
	Manifest(connectorKey string) (manifest.Manifest, bool)
}

// Entry is one line of the enrollment report.
type Entry struct {
	ConnectionID string    `json:"connection_id"`
	ConnectorKey string    `json:"connector_key"`
	Outcome      Outcome   `json:"outcome"`
	Reason       string    `json:"reason,omitempty"`
	Spec         string    `json:"spec,omitempty"`
	EvaluatedAt  time.Time `json:"evaluated_at"`
}

// Gate evaluates connections.
type Gate struct {
	Presence  Presence
	Manifests Manifests
	// HostEnv looks up the host environment (os.LookupEnv in production).
	HostEnv func(string) (string, bool)
	// AllowHostEnv reports whether host env values may satisfy auth; when
	// false only stored credentials count.
	AllowHostEnv bool
	// CheckSpec validates a schedule spec (schedule.Check).
	CheckSpec func(string) error
	Now       func() time.Time
}

// Evaluate decides one connection.
func (g *Gate) Evaluate(ctx context.Context, c Connection) Entry {
	e := Entry{ConnectionID: c.ID, ConnectorKey: c.ConnectorKey, EvaluatedAt: g.now()}
	switch c.State {
	case "paused":
		return e.with(SkippedPaused, "connection is paused")
	case "revoked":
		return e.with(SkippedRevoked, "connection is revoked")
	}
	if c.Hold.Code != "" {
		return e.with(SkippedHeld, c.Hold.reason())
	}
	m, ok := g.Manifests.Manifest(c.ConnectorKey)
	if !ok {
		return e.with(SkippedUnknownConnector, fmt.Sprintf("connector %q is not in the catalog", c.ConnectorKey))
	}
	spec := c.Schedule
	if spec == "" && m.DefaultSchedule.AutoEnroll {
		spec = m.DefaultSchedule.Spec
	}
	if spec == "" {
		return e.with(SkippedNoSchedule, "connection has no schedule and the connector's default does not auto-enroll")
	}
	if g.CheckSpec != nil {
		if err := g.CheckSpec(spec); err != nil {
			return e.with(SkippedInvalidSchedule, err.Error())
		}
	}
	e.Spec = spec
	if m.Auth.Kind == manifest.AuthStaticSecret && len(m.Auth.Required) > 0 {
		has, err := g.Presence.HasActiveCredential(ctx, c.ID)
		if err != nil {
			return e.with(SkippedPresenceError, "credential presence check failed")
		}
		if kp, ok := g.Presence.(KeyedPresence); ok && !has {
			key, missing, err := kp.KeyMissing(ctx, c.ID)
			if err != nil {
				return e.with(SkippedPresenceError, "credential presence check failed")
			}
			if missing {
				return e.with(SkippedKeyMissing, fmt.Sprintf("the stored credential is sealed under key id %d, which the loaded keyset does not hold", key))
			}
		}
		if !has {
			missing := g.missingEnv(m.Auth.Required)
			if len(missing) > 0 {
				if !g.AllowHostEnv {
					// Whatever the host env holds, it does not count.
					return e.with(SkippedEnv, "no active stored credential, and host env credentials are turned off")
				}
				return e.with(SkippedEnv, "no active stored credential and host env lacks "+strings.Join(missing, ", "))
			}
			return e.with(Enrolled, "auth satisfied by host env")
		}
		return e.with(Enrolled, "auth satisfied by stored credential")
	}
	return e.with(Enrolled, "")
}

// EvaluateAll decides every connection, sorted by connection id.
func (g *Gate) EvaluateAll(ctx context.Context, conns []Connection) []Entry {
	out := make([]Entry, 0, len(conns))
	for _, c := range conns {
		out = append(out, g.Evaluate(ctx, c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectionID < out[j].ConnectionID })
	return out
}

// missingEnv returns the required names not set non-empty in the host env.
func (g *Gate) missingEnv(required []string) []string {
	if !g.AllowHostEnv || g.HostEnv == nil {
		return append([]string(nil), required...)
	}
	var missing []string
	for _, n := range required {
		if v, ok := g.HostEnv(n); !ok || v == "" {
			missing = append(missing, n)
		}
	}
	return missing
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now().UTC()
	}
	return time.Now().UTC()
}

func (e Entry) with(o Outcome, reason string) Entry {
	e.Outcome, e.Reason = o, reason
	return e
}

// Summary is the one-line count of a report by outcome, e.g.
// "enrolled=3 skipped_env=1".
func Summary(entries []Entry) string {
	counts := map[Outcome]int{}
	for _, e := range entries {
		counts[e.Outcome]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[Outcome(k)]))
	}
	if len(parts) == 0 {
		return "no connections"
	}
	return strings.Join(parts, " ")
}

// reason is a held connection's report line: the code, when, the
// refusal's message and what releases the hold.
func (h Hold) reason() string {
	var b strings.Builder
	fmt.Fprintf(&b, "held after %s", h.Code)
	if !h.At.IsZero() {
		fmt.Fprintf(&b, " at %s", h.At.UTC().Format(time.RFC3339))
	}
	if h.Message != "" {
		fmt.Fprintf(&b, " (%s)", h.Message)
	}
	b.WriteString(": ")
	b.WriteString(releasedBy(h.Code))
	return b.String()
}

// releasedBy is what releases a hold of code.
func releasedBy(code string) string {
	switch code {
	case "static_secret_credential_unavailable", "credential_rejected":
		return "capture a new credential (connhost credential set)"
	case "credentials_required":
		return "capture a credential (connhost credential set)"
	case "invalid_config":
		return "fix the connection's config (connhost connection update --config)"
	case "connector_not_found":
		return "put the connector back in the plugin dir and rescan (connhost connector rescan)"
	}
	return "address the cause"
}
