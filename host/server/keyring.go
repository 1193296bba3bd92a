package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// keyring holds the loaded keyset behind an atomic pointer, so a rotation
// swaps it for the broker without a restart. It implements broker.Keyset
// and the API's Keyset.
//
// The broker reads AEAD and PrimaryKeyID in two calls; the API orders
// rotation against captures and rewraps so no swap lands between them.
type keyring struct {
	cur    atomic.Pointer[keysets.Keyset]
	cfg    keysets.Config
	broker *broker.Broker
	// bus tells the other hosts of a shared store to reload a rotated
	// keyset.
	bus   notify.Bus
	audit *audit.Log
	log   hclog.Logger
	// use counts the credentials sealed under a key, before it is
	// disabled.
	use keyUse
}

// keyUse is the part of the store DisableKey asks.
type keyUse interface {
	CredentialKeyUse(ctx context.Context, keyID uint32) (store.KeyUse, error)
}

// AEAD returns the current keyset's primitive.
func (k *keyring) AEAD() tink.AEAD { return k.cur.Load().AEAD() }

// PrimaryKeyID returns the current keyset's primary key id.
func (k *keyring) PrimaryKeyID() uint32 { return k.cur.Load().PrimaryKeyID() }

// Info describes the current keyset.
func (k *keyring) Info() keysets.Info { return k.cur.Load().Info() }

// Rotate adds a new primary key to the keyset file and loads it.
func (k *keyring) Rotate(ctx context.Context, actor string) (keysets.Info, error) {
	ev := audit.Event{Actor: actor, Operation: "keyset.rotate", TargetKind: "keyset", TargetID: KeysetFile}
	if _, err := keysets.Rotate(ctx, k.cfg); err != nil {
		ev.Outcome, ev.Detail = store.AuditFailed, map[string]string{"reason": err.Error()}
		k.audit.Record(ctx, ev)
		return keysets.Info{}, fmt.Errorf("server: rotate keyset: %w", err)
	}
	ks, err := keysets.Load(ctx, k.cfg)
	if err != nil {
		ev.Outcome, ev.Detail = store.AuditFailed, map[string]string{"reason": "rotated, but the new keyset did not load: " + err.Error()}
		k.audit.Record(ctx, ev)
		return keysets.Info{}, fmt.Errorf("server: load rotated keyset: %w", err)
	}
	prev := k.cur.Swap(ks)
	info := ks.Info()
	ev.Detail = map[string]string{"primary_key_id": strconv.FormatUint(uint64(info.PrimaryKeyID), 10),
		"previous_primary_key_id": strconv.FormatUint(uint64(prev.PrimaryKeyID()), 10), "keys": strconv.Itoa(len(info.Keys))}
	k.audit.Record(ctx, ev)
	k.log.Info("keyset rotated and loaded", "primary_key_id", info.PrimaryKeyID, "keys", len(info.Keys))
	if k.bus != nil {
		if err := k.bus.Publish(ctx, notify.Keyset, ""); err != nil {
			k.log.Warn("tell the other hosts to reload the keyset", "error", err)
		}
	}
	return info, nil
}

// DisableKey disables key keyID in the keyset file, loads the result at
// once and tells the other hosts of a shared store to reload it. It is
// refused, typed, for an unknown key (key_not_found), the primary key
// (key_is_primary) and a key that still seals active or revoked
// credentials (key_in_use, with how many): the count is taken while the
// keyset file is locked, so no rotation of the same file lands between it
// and the write. A host that missed a rotation could still seal a new
// credential under the old key meanwhile: the count is taken again once
// every host was told, and if it grew the key is enabled again and the
// disable refused.
func (k *keyring) DisableKey(ctx context.Context, actor string, keyID uint32) (api.KeyChange, error) {
	ev := keyEvent(actor, "keyset.key.disable", keyID)
	var use store.KeyUse
	info, changed, err := keysets.DisableKey(ctx, k.cfg, keyID, func(ctx context.Context, _ keysets.KeyInfo) error {
		var err error
		if use, err = k.use.CredentialKeyUse(ctx, keyID); err != nil {
			return err
		}
		return keyInUse(keyID, use)
	})
	if err != nil {
		err = keyErr(keyID, err)
		k.refused(ctx, ev, err)
		return api.KeyChange{}, err
	}
	if changed {
		if err := k.load(ctx); err != nil {
			k.refused(ctx, ev, err)
			return api.KeyChange{}, err
		}
		// Someone sealed under the key after the count (a host that had
		// not reloaded a rotation): undo, and refuse as if counted first.
		again, err := k.use.CredentialKeyUse(ctx, keyID)
		if err != nil {
			k.log.Warn("count again the credentials under a disabled key", "key_id", keyID, "error", err)
			again = use
		}
		if again.Needed() > 0 {
			if _, _, uerr := keysets.EnableKey(ctx, k.cfg, keyID); uerr != nil {
				k.log.Error("enable again a key that credentials were sealed under while it was disabled", "key_id", keyID, "error", uerr)
			} else if lerr := k.load(ctx); lerr != nil {
				k.log.Error("load the keyset after enabling a key again", "key_id", keyID, "error", lerr)
			}
			err = keyInUse(keyID, again)
			k.refused(ctx, ev, err)
			return api.KeyChange{}, err
		}
		use.Quarantined = again.Quarantined
		info = k.Info()
	}
	ev.Detail = map[string]string{"key_id": strconv.FormatUint(uint64(keyID), 10),
		"changed": strconv.FormatBool(changed), "quarantined_credentials": strconv.Itoa(use.Quarantined),
		"primary_key_id": strconv.FormatUint(uint64(info.PrimaryKeyID), 10)}
	k.audit.Record(ctx, ev)
	k.log.Info("keyset key disabled", "key_id", keyID, "changed", changed, "quarantined_credentials", use.Quarantined)
	return api.KeyChange{Keyset: info, KeyID: keyID, Changed: changed, QuarantinedCredentials: use.Quarantined}, nil
}

// EnableKey enables key keyID again (undoing a premature disable), loads
// the keyset and tells the other hosts to reload it.
func (k *keyring) EnableKey(ctx context.Context, actor string, keyID uint32) (api.KeyChange, error) {
	ev := keyEvent(actor, "keyset.key.enable", keyID)
	info, changed, err := keysets.EnableKey(ctx, k.cfg, keyID)
	if err != nil {
		err = keyErr(keyID, err)
		k.refused(ctx, ev, err)
		return api.KeyChange{}, err
	}
	if changed {
		if err := k.load(ctx); err != nil {
			k.refused(ctx, ev, err)
			return api.KeyChange{}, err
		}
		info = k.Info()
	}
	ev.Detail = map[string]string{"key_id": strconv.FormatUint(uint64(keyID), 10), "changed": strconv.FormatBool(changed),
		"primary_key_id": strconv.FormatUint(uint64(info.PrimaryKeyID), 10)}
	k.audit.Record(ctx, ev)
	k.log.Info("keyset key enabled", "key_id", keyID, "changed", changed)
	return api.KeyChange{Keyset: info, KeyID: keyID, Changed: changed}, nil
}

// load loads the keyset file, swaps it in and tells the other hosts.
func (k *keyring) load(ctx context.Context) error {
	ks, err := keysets.Load(ctx, k.cfg)
	if err != nil {
		return fmt.Errorf("server: load the changed keyset: %w", err)
	}
	k.cur.Store(ks)
	if k.bus != nil {
		if err := k.bus.Publish(ctx, notify.Keyset, ""); err != nil {
			k.log.Warn("tell the other hosts to reload the keyset", "error", err)
		}
	}
	return nil
}

// refused records a refused or failed key operation with its code.
func (k *keyring) refused(ctx context.Context, ev audit.Event, err error) {
	ev.Outcome = store.AuditFailed
	ev.Detail = map[string]string{"key_id": ev.TargetID, "failure_code": string(failure.CodeOf(err))}
	if fe := (*failure.Error)(nil); errors.As(err, &fe) {
		ev.Detail["reason"] = fe.Message
	} else {
		ev.Detail["reason"] = err.Error()
	}
	k.audit.Record(ctx, ev)
}

func keyEvent(actor, op string, keyID uint32) audit.Event {
	return audit.Event{Actor: actor, Operation: op, TargetKind: "keyset_key", TargetID: strconv.FormatUint(uint64(keyID), 10)}
}

// keyInUse refuses to disable a key that active or revoked credentials
// are still sealed under. It says how many, never which values.
func keyInUse(keyID uint32, use store.KeyUse) error {
	if use.Needed() == 0 {
		return nil
	}
	return failure.New(failure.KeyInUse,
		"key %d still seals %d credential(s) (%d active, %d revoked): run `connhost keyset rewrap`, which moves them to the primary key, then disable it",
		keyID, use.Needed(), use.Active, use.Revoked)
}

// keyErr types the keysets refusals of a key operation.
func keyErr(keyID uint32, err error) error {
	var fe *failure.Error
	switch {
	case errors.As(err, &fe):
		return err
	case errors.Is(err, keysets.ErrKeyNotFound):
		return &failure.Error{Code: failure.KeyNotFound, Message: fmt.Sprintf("the keyset has no key %d (`connhost keyset info` lists them)", keyID), Err: err}
	case errors.Is(err, keysets.ErrPrimaryKey):
		return &failure.Error{Code: failure.KeyIsPrimary, Message: fmt.Sprintf("key %d is the primary key, which seals every new credential: rotate first (`connhost keyset rotate`), rewrap, then disable the old key", keyID), Err: err}
	}
	return fmt.Errorf("server: keyset key %d: %w", keyID, err)
}

// Reload loads the keyset file again: another host rotated it, or
// disabled or enabled one of its keys.
func (k *keyring) Reload(ctx context.Context) {
	ks, err := keysets.Load(ctx, k.cfg)
	if err != nil {
		k.log.Error("reload the keyset another host rotated", "path", k.cfg.Path, "error", err)
		return
	}
	prev := k.cur.Swap(ks)
	k.log.Info("keyset reloaded", "primary_key_id", ks.PrimaryKeyID(), "previous_primary_key_id", prev.PrimaryKeyID())
}

// Rewrap re-encrypts every stored credential under the primary key.
func (k *keyring) Rewrap(ctx context.Context, actor string) (broker.RewrapReport, error) {
	return k.broker.Rewrap(ctx, actor)
}

// DefaultKEKFile is the name, in the data dir, of the KEK file `connhost
// keyset init` generates when it is given no KEK source.
const DefaultKEKFile = "keyset.kek"

// ErrKEKRequired reports a start without a KEK whose keyset file is
// encrypted. It wraps keysets.ErrKEKRequired.
var ErrKEKRequired = fmt.Errorf("server: %w", keysets.ErrKEKRequired)

// kekRequiredError is the refusal of a start that configured no KEK while
// the keyset file is encrypted: it names the KEK file `keyset init` left
// in the data dir, when there is one, and the flags that pass a KEK.
type kekRequiredError struct{ msg string }

func (e *kekRequiredError) Error() string { return e.msg }
func (e *kekRequiredError) Unwrap() error { return ErrKEKRequired }

func kekRequiredErr(keysetPath, dataDir, kekEnv string) error {
	if kekEnv == "" {
		kekEnv = DefaultKEKEnv
	}
	msg := fmt.Sprintf("server: the keyset %s is encrypted, and no KEK is configured (%s is not set, and there is no --kek-file or --kms-uri): ", keysetPath, kekEnv)
	kekFile := filepath.Join(dataDir, DefaultKEKFile)
	if fi, err := os.Stat(kekFile); err == nil && fi.Mode().IsRegular() {
		msg += fmt.Sprintf("`connhost keyset init` put its KEK in %s: start with --kek-file %s", kekFile, kekFile)
	} else {
		msg += fmt.Sprintf("start with the KEK it is encrypted under: --kek-file FILE, --kms-uri URI, or its base64 in %s (--kek-env names another variable)", kekEnv)
	}
	return &kekRequiredError{msg: msg}
}

// wrongKEKErr is the refusal of a keyset that does not decrypt under the
// configured KEK. When the data dir holds the KEK file `keyset init`
// generates and the start did not use it, it names that file: a keyset
// made without a KEK source, served with CONNHOST_KEK exported, fails
// here.
func wrongKEKErr(err error, dataDir string, cfg *Config) error {
	kekFile := filepath.Join(dataDir, DefaultKEKFile)
	fi, serr := os.Stat(kekFile)
	used, _ := filepath.Abs(cfg.KEKFile)
	if serr != nil || !fi.Mode().IsRegular() || (cfg.KEKFile != "" && used == kekFile) {
		return fmt.Errorf("server: load keyset: %w", err)
	}
	hint := fmt.Sprintf("the data dir holds %s, the KEK file `connhost keyset init` generates: if the keyset is under it, start with --kek-file %s", kekFile, kekFile)
	if v, ok := os.LookupEnv(cfg.KEKEnv); ok && strings.TrimSpace(v) != "" {
		hint += fmt.Sprintf(" and %s unset", cfg.KEKEnv)
	}
	return fmt.Errorf("server: load keyset: %w; %s", err, hint)
}

// InitKeyset creates the keyset of dataDir under kek (`connhost keyset
// init`), creating the data dir 0700 if needed. It refuses to overwrite an
// existing keyset (keysets.ErrExists). logger receives the dev-mode warning
// when kek is keysets.Cleartext(); nil logs to stderr.
func InitKeyset(ctx context.Context, dataDir string, kek keysets.Source, logger hclog.Logger) (keysets.Info, error) {
	if dataDir == "" {
		return keysets.Info{}, fmt.Errorf("%w: data dir is empty", ErrInvalidConfig)
	}
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "connhost", Output: os.Stderr})
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return keysets.Info{}, fmt.Errorf("server: create data dir: %w", err)
	}
	ks, err := keysets.Create(ctx, keysets.Config{Path: filepath.Join(dataDir, KeysetFile), KEK: kek, Logger: logger})
	if err != nil {
		return keysets.Info{}, err
	}
	return ks.Info(), nil
}

// EncryptKeyset encrypts the cleartext (dev-mode) keyset of dataDir —
// keysetPath, or keyset.json in dataDir when empty — under kek, in place
// (`connhost keyset encrypt`). It holds the data dir's lock meanwhile, so
// it is refused with ErrDataDirInUse while a host serves dataDir: a running
// host keeps its dev-mode configuration and could not reload the file.
// An encrypted keyset is keysets.ErrAlreadyEncrypted, a missing one
// keysets.ErrNotFound.
func EncryptKeyset(ctx context.Context, dataDir, keysetPath string, kek keysets.Source, logger hclog.Logger) (keysets.Info, error) {
	if dataDir == "" {
		return keysets.Info{}, fmt.Errorf("%w: data dir is empty", ErrInvalidConfig)
	}
	if keysetPath == "" {
		keysetPath = filepath.Join(dataDir, KeysetFile)
	}
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "connhost", Output: os.Stderr})
	}
	if _, err := os.Stat(keysetPath); err != nil {
		return keysets.Info{}, fmt.Errorf("%w: %s", keysets.ErrNotFound, keysetPath)
	}
	if _, err := os.Stat(dataDir); err == nil {
		lock, err := lockDataDir(dataDir)
		if err != nil {
			return keysets.Info{}, err
		}
		defer lock.release()
		defer lock.dropCreated() // encrypting leaves no lock file behind

	}
	return keysets.Encrypt(ctx, keysets.Config{Path: keysetPath, KEK: kek, Logger: logger})
}

var (
	_ broker.Keyset = (*keyring)(nil)
	_ api.Keyset    = (*keyring)(nil)
)
