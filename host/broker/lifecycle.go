package broker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/manifest"
)

// ValueError says which captured value is invalid and why. It never holds
// a value, nor a name the connector does not declare — that may be a
// secret pasted in the wrong place — only that name's position.
type ValueError struct {
	// Name is a name the connector declares, when the error is about it.
	Name string
	// Position is the 1-based position of an undeclared or malformed name
	// among the values as given.
	Position int
	Reason   string
	// err is a more specific sentinel the error also matches.
	err error
}

func (e *ValueError) Error() string {
	switch {
	case e.Name != "":
		return fmt.Sprintf("broker: invalid credential value %s: %s", e.Name, e.Reason)
	case e.Position > 0:
		return fmt.Sprintf("broker: invalid credential: value %d: %s", e.Position, e.Reason)
	}
	return "broker: invalid credential: " + e.Reason
}

// Unwrap lets errors.Is(err, ErrInvalidValues) match, and the specific
// sentinel (ErrValueTooShort) where there is one.
func (e *ValueError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalidValues, e.err}
	}
	return []error{ErrInvalidValues}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Capture is a request to store (or replace) a connection's credential.
type Capture struct {
	ConnectionID string
	// Auth is the connector's auth capability; the values must provide
	// exactly its required names.
	Auth   manifest.Auth
	Values map[string]string
	// Order is the names of Values as the operator gave them (optional;
	// default sorted), for the positions errors report.
	Order []string
	Actor string
}

// validate checks names and values without echoing any value.
func (c Capture) validate() error {
	if c.Auth.Kind != manifest.AuthStaticSecret {
		return &ValueError{Reason: fmt.Sprintf("the connector's auth kind is %q; it takes no stored credential", c.Auth.Kind)}
	}
	if len(c.Values) == 0 {
		return &ValueError{Reason: "no values given"}
	}
	if len(c.Values) > MaxValues {
		return &ValueError{Reason: fmt.Sprintf("more than %d values", MaxValues)}
	}
	required := map[string]bool{}
	for _, n := range c.Auth.Required {
		required[n] = true
	}
	for i, n := range c.names() {
		v := c.Values[n]
		switch {
		case !envNameRE.MatchString(n):
			return &ValueError{Position: i + 1, Reason: "its name is not an environment variable name"}
		case !required[n]:
			return &ValueError{Position: i + 1, Reason: fmt.Sprintf("its name is not one this connector declares (it declares %s)",
				strings.Join(c.Auth.Required, ", "))}
		case v == "":
			return &ValueError{Name: n, Reason: "is empty"}
		case strings.TrimSpace(v) == "":
			// Spaces alone are never a secret: a paste that lost its value.
			return &ValueError{Name: n, Reason: "is blank (white space only)"}
		case len(v) < MinValueBytes:
			return &ValueError{Name: n, Reason: fmt.Sprintf("is shorter than %d bytes (a value this short cannot be redacted from a connector's output without revealing it)", MinValueBytes),
				err: ErrValueTooShort}
		case len(v) > MaxValueBytes:
			return &ValueError{Name: n, Reason: fmt.Sprintf("is longer than %d bytes", MaxValueBytes)}
		case strings.IndexByte(v, 0) >= 0:
			return &ValueError{Name: n, Reason: "contains a NUL byte"}
		}
	}
	for _, n := range c.Auth.Required {
		if _, ok := c.Values[n]; !ok {
			return &ValueError{Name: n, Reason: "is required by the connector and missing"}
		}
	}
	return nil
}

// names returns the names of the values as given (Order, when it names
// exactly them), else sorted.
func (c Capture) names() []string {
	if len(c.Order) == len(c.Values) {
		ok := true
		for _, n := range c.Order {
			if _, in := c.Values[n]; !in {
				ok = false
				break
			}
		}
		if ok {
			return c.Order
		}
	}
	names := make([]string, 0, len(c.Values))
	for n := range c.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Capture stores the connection's credential, replacing any previous one
// in any state. It is the only operation that creates a credential.
func (b *Broker) Capture(ctx context.Context, c Capture) (store.CredentialMeta, error) {
	return b.store(ctx, c, "credential.capture", b.cfg.Store.CaptureCredential)
}

// Rotate replaces the values of an active credential and stamps
// rotated_at; the connection, its schedule and history are kept.
func (b *Broker) Rotate(ctx context.Context, c Capture) (store.CredentialMeta, error) {
	return b.store(ctx, c, "credential.rotate", b.cfg.Store.RotateCredential)
}

func (b *Broker) store(ctx context.Context, c Capture, op string,
	put func(context.Context, store.SealedCredential) (store.CredentialMeta, error)) (store.CredentialMeta, error) {
	ev := audit.Event{Actor: c.Actor, Operation: op, TargetKind: "connection", TargetID: c.ConnectionID}
	if err := c.validate(); err != nil {
		ev.Outcome, ev.Detail = store.AuditRefused, map[string]string{"reason": err.Error()}
		b.cfg.Audit.Record(ctx, ev)
		return store.CredentialMeta{}, err
	}
	ct, err := b.seal(c.ConnectionID, store.CredentialStaticSecret, c.Values)
	if err != nil {
		ev.Outcome, ev.Detail = store.AuditFailed, map[string]string{"reason": err.Error()}
		b.cfg.Audit.Record(ctx, ev)
		return store.CredentialMeta{}, err
	}
	names := make([]string, 0, len(c.Values))
	for n := range c.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	meta, err := put(ctx, store.SealedCredential{
		ConnectionID: c.ConnectionID, Kind: store.CredentialStaticSecret,
		Names: names, Ciphertext: ct, KeyID: keyIDOf(ct),
	})
	if err != nil {
		ev.Outcome, ev.Detail = store.AuditFailed, map[string]string{"reason": err.Error()}
		b.cfg.Audit.Record(ctx, ev)
		return store.CredentialMeta{}, err
	}
	ev.Detail = map[string]string{"names": strings.Join(names, ","), "key_id": strconv.FormatUint(uint64(meta.KeyID), 10)}
	b.cfg.Audit.Record(ctx, ev)
	return meta, nil
}

// Revoke stops future use of the connection's credential; the connection
// and its records are kept.
func (b *Broker) Revoke(ctx context.Context, connectionID, actor string) (store.CredentialMeta, error) {
	return b.transition(ctx, connectionID, actor, "credential.revoke", b.cfg.Store.RevokeCredential)
}

// Delete removes the credential's ciphertext and keeps a tombstone, so
// "deleted" stays distinguishable from "never stored".
func (b *Broker) Delete(ctx context.Context, connectionID, actor string) (store.CredentialMeta, error) {
	return b.transition(ctx, connectionID, actor, "credential.delete", b.cfg.Store.DeleteCredential)
}

func (b *Broker) transition(ctx context.Context, connectionID, actor, op string,
	fn func(context.Context, string) (store.CredentialMeta, error)) (store.CredentialMeta, error) {
	meta, err := fn(ctx, connectionID)
	ev := audit.Event{Actor: actor, Operation: op, TargetKind: "connection", TargetID: connectionID}
	if err != nil {
		ev.Outcome, ev.Detail = store.AuditFailed, map[string]string{"reason": err.Error()}
	}
	b.cfg.Audit.Record(ctx, ev)
	return meta, err
}

// RewrapReport is the outcome of Rewrap.
type RewrapReport struct {
	PrimaryKeyID uint32 `json:"primary_key_id"`
	Scanned      int    `json:"scanned"`
	Rewrapped    int    `json:"rewrapped"`
	Current      int    `json:"current"` // already under the primary key
	// Quarantined lists connections whose credential no longer decrypts;
	// their credential moved to state quarantined (if it was active).
	Quarantined []string        `json:"quarantined"`
	Failed      []RewrapFailure `json:"failed"`
}

// RewrapFailure is a credential Rewrap could not re-encrypt.
type RewrapFailure struct {
	ConnectionID string `json:"connection_id"`
	Reason       string `json:"reason"`
}

// rewrapPage is how many credentials Rewrap reads at a time.
const rewrapPage = 200

// Rewrap re-encrypts every stored ciphertext under the keyset's current
// primary key. A credential that does not decrypt is reported and
// quarantined; Rewrap never stops half way because of one row.
func (b *Broker) Rewrap(ctx context.Context, actor string) (RewrapReport, error) {
	if b.cfg.Keyset == nil {
		return RewrapReport{}, ErrNoKeyset
	}
	primary := b.cfg.Keyset.PrimaryKeyID()
	rep := RewrapReport{PrimaryKeyID: primary, Quarantined: []string{}, Failed: []RewrapFailure{}}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rows, err := b.cfg.Store.ListCredentialCiphertexts(ctx, after, rewrapPage)
		if err != nil {
			return rep, fmt.Errorf("broker: rewrap: list credentials: %w", err)
		}
		for _, row := range rows {
			rep.Scanned++
			b.rewrapOne(ctx, row, primary, &rep)
		}
		if len(rows) < rewrapPage {
			break
		}
		after = rows[len(rows)-1].ConnectionID
	}
	outcome := store.AuditSucceeded
	if len(rep.Failed) > 0 || len(rep.Quarantined) > 0 {
		outcome = store.AuditFailed
	}
	b.cfg.Audit.Record(ctx, audit.Event{
		Actor: actor, Operation: "keyset.rewrap", TargetKind: "keyset", Outcome: outcome,
		Detail: map[string]string{
			"primary_key_id": strconv.FormatUint(uint64(primary), 10),
			"scanned":        strconv.Itoa(rep.Scanned),
			"rewrapped":      strconv.Itoa(rep.Rewrapped),
			"current":        strconv.Itoa(rep.Current),
			"quarantined":    strconv.Itoa(len(rep.Quarantined)),
			"failed":         strconv.Itoa(len(rep.Failed)),
		},
	})
	return rep, nil
}

func (b *Broker) rewrapOne(ctx context.Context, row store.CredentialCiphertext, primary uint32, rep *RewrapReport) {
	if row.KeyID == primary {
		rep.Current++
		return
	}
	values, err := b.open(row.ConnectionID, row.Kind, row.Ciphertext)
	if err != nil {
		rep.Quarantined = append(rep.Quarantined, row.ConnectionID)
		if row.State == store.CredentialActive {
			if _, qerr := b.cfg.Store.QuarantineCredential(ctx, row.ConnectionID); qerr != nil {
				rep.Failed = append(rep.Failed, RewrapFailure{ConnectionID: row.ConnectionID, Reason: "quarantine: " + qerr.Error()})
			}
		}
		b.cfg.Audit.Record(ctx, audit.Event{Actor: audit.ActorHost, Operation: "credential.quarantine",
			TargetKind: "connection", TargetID: row.ConnectionID,
			Detail: map[string]string{"reason": "does not decrypt with the loaded keyset"}})
		return
	}
	ct, err := b.seal(row.ConnectionID, row.Kind, values)
	clear(values)
	if err != nil {
		rep.Failed = append(rep.Failed, RewrapFailure{ConnectionID: row.ConnectionID, Reason: err.Error()})
		return
	}
	switch err := b.cfg.Store.ReplaceCiphertext(ctx, row.ConnectionID, row.Ciphertext, ct, keyIDOf(ct)); {
	case errors.Is(err, store.ErrCiphertextChanged):
		// Captured or rotated meanwhile: the new ciphertext is already
		// under the current primary.
		rep.Current++
	case err != nil:
		rep.Failed = append(rep.Failed, RewrapFailure{ConnectionID: row.ConnectionID, Reason: err.Error()})
	default:
		rep.Rewrapped++
	}
}
