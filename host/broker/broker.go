// Package broker is connhost's one credential broker.
//
// Resolve is the only code in connhost that decrypts a stored credential.
// Every launch path — scheduled, retry, manual over HTTP, gRPC or the CLI —
// reaches it through the runner's single launch seam. Its policy, for a
// connector whose manifest declares capabilities.auth.required:
//
//	stored credential state                        result
//	active, decrypts                               its values (source "stored"); they win over the host env
//	revoked / deleted / quarantined /
//	undecryptable / keyset missing                 refuse static_secret_credential_unavailable; never the host env
//	never stored, every required name non-empty
//	in the host env, host env credentials allowed  the host env values (source "host_env")
//	otherwise                                      refuse credentials_required
//
// Eligibility gates never get a Broker: they get a Presence, which holds no
// keyset and can only answer whether an active credential exists.
//
// Each ciphertext is sealed with Tink AEAD under the operator's keyset with
// associated data binding it to its connection id and credential kind, so a
// ciphertext copied onto another connection's row fails to decrypt.
package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/hashicorp/go-hclog"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Source says where resolved credential values came from.
type Source string

// Sources.
const (
	SourceNone    Source = "none"     // the connector needs no credential
	SourceStored  Source = "stored"   // an active stored credential
	SourceHostEnv Source = "host_env" // the host environment (never stored)
)

// Limits on captured values.
const (
	MaxValues     = 32
	MaxValueBytes = 64 << 10
	// MinValueBytes is the shortest value stored. Every value is redacted
	// wherever a connector's output shows it; a short one matches inside
	// ordinary words ("e" in "exited"), so the marks would mangle the
	// text and, by where they land, spell the secret out. Eight bytes is
	// also the shortest encoding the redactor looks for, and no real
	// token or password is shorter.
	MinValueBytes = 8
)

// Keyset is the part of a loaded keyset the broker uses.
type Keyset interface {
	AEAD() tink.AEAD
	PrimaryKeyID() uint32
}

// Store is the part of the store the broker uses.
type Store interface {
	store.Credentials
}

// Config configures a Broker.
type Config struct {
	Store Store
	// Keyset may be nil: every stored credential is then unavailable.
	Keyset Keyset
	// HostEnv looks up the host environment (os.LookupEnv in production).
	HostEnv func(string) (string, bool)
	// AllowHostEnv lets never-stored credentials resolve from the host env.
	AllowHostEnv bool
	Audit        *audit.Log
	Logger       hclog.Logger
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("broker: Config.Store is required")
	}
	return nil
}

// Broker resolves and manages stored credentials.
type Broker struct {
	cfg Config
}

// New returns a Broker.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HostEnv == nil {
		cfg.HostEnv = func(string) (string, bool) { return "", false }
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Broker{cfg: cfg}, nil
}

// Target is what Resolve needs to know about a connection.
type Target struct {
	ConnectionID string
	Auth         manifest.Auth
}

// Resolution is a resolved credential. Values hold secrets: pass them to
// the child's environment and to redaction, never to logs or responses.
type Resolution struct {
	Source Source
	// Values maps env names to secret values (empty for SourceNone).
	Values map[string]string
	// Report says what the resolution found, without values. Resolve
	// fills it on a refusal too.
	Report Report
}

// Report is what a resolution found, for a run's provenance and for
// connection explain: states, key ids, stamps and names — never a value,
// a hash of one or a length.
type Report struct {
	// Source is where the credential came from; "" when refused.
	Source Source
	// Credential is the stored credential used or refused over; nil when
	// none was ever stored (or the connector needs none).
	Credential *store.ProvenanceCredential
	// Refusal is set when the resolution refused.
	Refusal *store.ProvenanceRefusal
}

// Names returns the value names, sorted.
func (r Resolution) Names() []string {
	names := make([]string, 0, len(r.Values))
	for n := range r.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Secrets returns the values, for redaction.
func (r Resolution) Secrets() []string {
	out := make([]string, 0, len(r.Values))
	for _, n := range r.Names() {
		out = append(out, r.Values[n])
	}
	return out
}

// Resolve returns the connection's credential env fragment or a typed
// refusal (*failure.Error with code static_secret_credential_unavailable or
// credentials_required). It is the only function that decrypts. On a
// refusal the returned Resolution holds no values, only the Report of why.
func (b *Broker) Resolve(ctx context.Context, t Target) (Resolution, error) {
	if !needsCredential(t.Auth) {
		return Resolution{Source: SourceNone, Report: Report{Source: SourceNone}}, nil
	}
	cred, err := b.cfg.Store.GetCredential(ctx, t.ConnectionID)
	switch {
	case errors.Is(err, store.ErrCredentialNotFound):
		values, rep, err := hostEnvPolicy(t, b.cfg.HostEnv, b.cfg.AllowHostEnv)
		return Resolution{Source: rep.Source, Values: values, Report: rep}, err
	case err != nil:
		return Resolution{}, fmt.Errorf("broker: load credential: %w", err)
	}
	rep := Report{Credential: credentialReport(cred.CredentialMeta)}
	if err := stateRefusal(t.ConnectionID, cred.CredentialMeta, &rep); err != nil {
		return Resolution{Report: rep}, err
	}
	if b.cfg.Keyset == nil {
		return Resolution{Report: rep}, undecryptable(t.ConnectionID, cred.CredentialMeta, &rep, "cannot be decrypted: no keyset is loaded")
	}
	values, err := b.open(cred.ConnectionID, cred.Kind, cred.Ciphertext)
	if err != nil {
		b.cfg.Logger.Warn("stored credential does not decrypt", "connection_id", t.ConnectionID, "key_id", cred.KeyID)
		return Resolution{Report: rep}, undecryptable(t.ConnectionID, cred.CredentialMeta, &rep, "cannot be decrypted with the loaded keyset")
	}
	var present []string
	for n, v := range values {
		if v != "" {
			present = append(present, n)
		}
	}
	if err := missingRefusal(t, cred.CredentialMeta, present, &rep); err != nil {
		clear(values)
		return Resolution{Report: rep}, err
	}
	rep.Source = SourceStored
	return Resolution{Source: SourceStored, Values: values, Report: rep}, nil
}

// The resolution policy, shared by Resolve (which decrypts) and
// Predictor.Predict (which never does), so a prediction cannot drift
// from the launch it predicts.

// needsCredential reports whether a connector's auth asks for one.
func needsCredential(a manifest.Auth) bool {
	return a.Kind == manifest.AuthStaticSecret && len(a.Required) > 0
}

// credentialReport describes a stored credential without its values.
func credentialReport(m store.CredentialMeta) *store.ProvenanceCredential {
	return &store.ProvenanceCredential{State: m.State, KeyID: m.KeyID, CapturedAt: m.CapturedAt,
		RotatedAt: m.RotatedAt, RevokedAt: m.RevokedAt, DeletedAt: m.DeletedAt}
}

// unavailable is the refusal of a stored credential that cannot be used.
func unavailable(connectionID, why string) error {
	return &failure.Error{Code: failure.StaticSecretUnavailable,
		Message: fmt.Sprintf("connection %s: stored credential %s; refusing to fall back to the host environment", connectionID, why)}
}

// stateRefusal refuses a stored credential that is not active, noting it
// in rep.
func stateRefusal(connectionID string, m store.CredentialMeta, rep *Report) error {
	if m.State == store.CredentialActive {
		return nil
	}
	var at time.Time
	switch m.State {
	case store.CredentialRevoked:
		at = m.RevokedAt
	case store.CredentialDeleted:
		at = m.DeletedAt
	case store.CredentialQuarantined:
		at = m.QuarantinedAt
	}
	why := "is " + string(m.State)
	if !at.IsZero() {
		why = fmt.Sprintf("%s at %s", m.State, at.UTC().Format(time.RFC3339))
	}
	rep.Refusal = &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: string(m.State)}
	return unavailable(connectionID, why)
}

// undecryptable refuses an active credential the loaded keyset cannot
// open, noting it in rep.
func undecryptable(connectionID string, m store.CredentialMeta, rep *Report, why string) error {
	rep.Refusal = &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: string(m.State), Undecryptable: true}
	return unavailable(connectionID, why)
}

// missingRefusal refuses an active credential that does not hold every
// required name non-empty (present lists the names it does), noting it in
// rep.
func missingRefusal(t Target, m store.CredentialMeta, present []string, rep *Report) error {
	have := make(map[string]bool, len(present))
	for _, n := range present {
		have[n] = true
	}
	var missing []string
	for _, n := range t.Auth.Required {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rep.Refusal = &store.ProvenanceRefusal{Code: failure.StaticSecretUnavailable, CredentialState: string(m.State), MissingNames: missing}
	return &failure.Error{Code: failure.StaticSecretUnavailable,
		Message: fmt.Sprintf("connection %s: stored credential lacks required names %v; capture it again", t.ConnectionID, missing)}
}

// hostEnvPolicy resolves a connection that never stored a credential
// from the host environment: every required name set non-empty, and host
// env credentials allowed. values is nil on a refusal.
func hostEnvPolicy(t Target, lookup func(string) (string, bool), allow bool) (map[string]string, Report, error) {
	var absent, empty []string
	values := map[string]string{}
	for _, n := range t.Auth.Required {
		v, ok := lookup(n)
		switch {
		case !ok:
			absent = append(absent, n)
		case v == "":
			empty = append(empty, n)
		default:
			values[n] = v
		}
	}
	if allow && len(absent) == 0 && len(empty) == 0 {
		return values, Report{Source: SourceHostEnv}, nil
	}
	missing := t.Auth.Required
	msg := fmt.Sprintf("connection %s has no stored credential and host env credentials are turned off (--allow-host-env-credentials=false); it needs %v", t.ConnectionID, missing)
	if allow {
		missing = nil
		for _, n := range t.Auth.Required {
			if _, ok := values[n]; !ok {
				missing = append(missing, n)
			}
		}
		msg = fmt.Sprintf("connection %s has no stored credential and the host environment does not provide %v", t.ConnectionID, missing)
	}
	clear(values)
	rep := Report{Refusal: &store.ProvenanceRefusal{Code: failure.CredentialsRequired, CredentialState: "none",
		AbsentEnv: absent, EmptyEnv: empty, HostEnvDisallowed: !allow}}
	return nil, rep, &failure.Error{Code: failure.CredentialsRequired, Message: msg}
}

// associatedData binds a ciphertext to its connection and kind.
func associatedData(connectionID string, kind store.CredentialKind) []byte {
	return []byte("connhost/credential/v1/" + strconv.Itoa(len(connectionID)) + ":" + connectionID + "/" + string(kind))
}

// seal encrypts values for the connection.
func (b *Broker) seal(connectionID string, kind store.CredentialKind, values map[string]string) ([]byte, error) {
	if b.cfg.Keyset == nil {
		return nil, ErrNoKeyset
	}
	pt, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("broker: encode credential: %w", err)
	}
	ct, err := b.cfg.Keyset.AEAD().Encrypt(pt, associatedData(connectionID, kind))
	clear(pt)
	if err != nil {
		return nil, errors.New("broker: encrypt credential failed")
	}
	return ct, nil
}

// keyIDOf reads the Tink key id a ciphertext was sealed under from its
// prefix, so the id stored with a ciphertext is always the one that sealed
// it, even if the keyset is swapped concurrently.
func keyIDOf(ct []byte) uint32 {
	id, _ := keysets.KeyIDOf(ct)
	return id
}

// open decrypts a ciphertext of the connection. Errors carry no detail.
func (b *Broker) open(connectionID string, kind store.CredentialKind, ct []byte) (map[string]string, error) {
	if b.cfg.Keyset == nil {
		return nil, ErrNoKeyset
	}
	if len(ct) == 0 {
		return nil, errUndecryptable
	}
	pt, err := b.cfg.Keyset.AEAD().Decrypt(ct, associatedData(connectionID, kind))
	if err != nil {
		return nil, errUndecryptable
	}
	defer clear(pt)
	var values map[string]string
	if err := json.Unmarshal(pt, &values); err != nil {
		return nil, errUndecryptable
	}
	return values, nil
}

// Presence answers whether a connection holds an active stored
// credential. It holds no keyset: eligibility code that gets a Presence
// cannot decrypt.
type Presence struct {
	Store store.Presence
	// Keys describes the loaded keyset — key ids and states, never key
	// material. A credential sealed under a key it does not hold is not
	// present: it cannot be resolved. Nil: no keyset, so no stored
	// credential is usable.
	Keys KeyInfo
}

// KeyInfo describes a keyset without its key material.
type KeyInfo interface {
	Info() keysets.Info
}

// HasActiveCredential reports whether the connection has an active
// stored credential the loaded keyset can decrypt, reading only its state
// and key id.
func (p Presence) HasActiveCredential(ctx context.Context, connectionID string) (bool, error) {
	key, active, err := p.Store.ActiveCredentialKey(ctx, connectionID)
	if err != nil || !active {
		return false, err
	}
	return p.Keys != nil && p.Keys.Info().Holds(key), nil
}

// KeyMissing reports an active stored credential sealed under a key the
// loaded keyset does not hold (it is unavailable, and the host env must
// not stand in for it), with that key id.
func (p Presence) KeyMissing(ctx context.Context, connectionID string) (uint32, bool, error) {
	key, active, err := p.Store.ActiveCredentialKey(ctx, connectionID)
	if err != nil || !active {
		return 0, false, err
	}
	return key, p.Keys == nil || !p.Keys.Info().Holds(key), nil
}

// CredentialMetas reads credential metadata — never a ciphertext.
type CredentialMetas interface {
	GetCredentialMeta(ctx context.Context, connectionID string) (store.CredentialMeta, error)
}

// Predictor says what Resolve would do for a connection without
// resolving: it reads the stored credential's metadata (state, names, key
// id), whether the loaded keyset holds that key id, and the host
// environment by presence. Like Presence it holds no keyset, so it cannot
// decrypt; it shares Resolve's policy and messages.
//
// What it cannot see is whether an active credential's ciphertext opens
// under a key the keyset holds: it predicts success there, and Resolve
// would refuse an undecryptable ciphertext at launch.
type Predictor struct {
	Credentials CredentialMetas
	// Keys describes the loaded keyset (key ids only); nil: none loaded.
	Keys KeyInfo
	// HostEnv looks up the host environment (os.LookupEnv in production).
	HostEnv func(string) (string, bool)
	// AllowHostEnv is the broker's Config.AllowHostEnv.
	AllowHostEnv bool
}

// Prediction is what Resolve would return, without values.
type Prediction struct {
	Source Source
	// Names are the names the credential source would supply: the stored
	// credential's names, or the required names taken from the host env.
	Names  []string
	Report Report
}

// Predict returns the resolution Resolve would make for t, or the typed
// refusal (with its Report) it would return.
func (p Predictor) Predict(ctx context.Context, t Target) (Prediction, error) {
	if !needsCredential(t.Auth) {
		return Prediction{Source: SourceNone, Report: Report{Source: SourceNone}}, nil
	}
	meta, err := p.Credentials.GetCredentialMeta(ctx, t.ConnectionID)
	switch {
	case errors.Is(err, store.ErrCredentialNotFound):
		lookup := p.HostEnv
		if lookup == nil {
			lookup = func(string) (string, bool) { return "", false }
		}
		values, rep, err := hostEnvPolicy(t, lookup, p.AllowHostEnv)
		pr := Prediction{Source: rep.Source, Report: rep}
		for n := range values {
			pr.Names = append(pr.Names, n)
		}
		clear(values)
		sort.Strings(pr.Names)
		return pr, err
	case err != nil:
		return Prediction{}, fmt.Errorf("broker: load credential metadata: %w", err)
	}
	rep := Report{Credential: credentialReport(meta)}
	if err := stateRefusal(t.ConnectionID, meta, &rep); err != nil {
		return Prediction{Report: rep}, err
	}
	if p.Keys == nil || len(p.Keys.Info().Keys) == 0 {
		return Prediction{Report: rep}, undecryptable(t.ConnectionID, meta, &rep, "cannot be decrypted: no keyset is loaded")
	}
	if !p.Keys.Info().Holds(meta.KeyID) {
		return Prediction{Report: rep}, undecryptable(t.ConnectionID, meta, &rep,
			fmt.Sprintf("is sealed under key id %d, which the loaded keyset does not hold", meta.KeyID))
	}
	if err := missingRefusal(t, meta, meta.Names, &rep); err != nil {
		return Prediction{Report: rep}, err
	}
	rep.Source = SourceStored
	names := append([]string(nil), meta.Names...)
	sort.Strings(names)
	return Prediction{Source: SourceStored, Names: names, Report: rep}, nil
}
