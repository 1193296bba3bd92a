package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
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

// Reload loads the keyset file again: another host rotated it.
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
		msg += fmt.Sprintf("start with the KEK it was created under: --kek-file FILE, --kms-uri URI, or its base64 in %s (--kek-env names another variable)", kekEnv)
	}
	return &kekRequiredError{msg: msg}
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

var (
	_ broker.Keyset = (*keyring)(nil)
	_ api.Keyset    = (*keyring)(nil)
)
