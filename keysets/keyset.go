package keysets

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
	"google.golang.org/protobuf/proto"
)

// AssociatedData binds the encrypted keyset to its purpose: a ciphertext
// made by the same KEK for anything else does not load as a keyset.
const AssociatedData = "connhost-keyset-v1"

// Key statuses, as reported in KeyInfo.Status (Tink's KeyStatusType names).
const (
	StatusEnabled   = "ENABLED"
	StatusDisabled  = "DISABLED"
	StatusDestroyed = "DESTROYED"
)

// KeyTypeAES256GCM is KeyInfo.Type for the keys this package creates.
const KeyTypeAES256GCM = "AES256_GCM"

// tinkPrefixSize is the length of Tink's output prefix: one version byte
// (tinkPrefixVersion) and the big-endian key id.
const (
	tinkPrefixSize    = 5
	tinkPrefixVersion = 0x01
)

// Config says where the keyset lives and how it is protected. Build it once
// at start-up.
type Config struct {
	// Path is the keyset file.
	Path string
	// KEK is the key-encryption key source. Required: Cleartext() is the
	// explicit dev-mode opt-in, there is no implicit default.
	KEK Source
	// Logger receives the dev-mode warning and lifecycle lines. Optional,
	// except in dev mode, where the warning must reach someone.
	Logger hclog.Logger
}

// Validate reports the first problem with c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("%w: keyset path is empty", ErrInvalidConfig)
	}
	if c.KEK == nil {
		return fmt.Errorf("%w: KEK is required: use KEKFromEnv, KEKFromFile or KEKFromURI, or Cleartext() to opt into dev mode explicitly", ErrInvalidConfig)
	}
	if err := c.KEK.validate(); err != nil {
		return err
	}
	if c.KEK.Kind() == KEKKindCleartext && c.Logger == nil {
		return fmt.Errorf("%w: a Logger is required in dev mode so the cleartext warning is seen", ErrInvalidConfig)
	}
	return nil
}

func (c Config) logger() hclog.Logger {
	if c.Logger == nil {
		return hclog.NewNullLogger()
	}
	return c.Logger
}

// Info describes a keyset without any key material: safe to log, print and
// return from read surfaces.
type Info struct {
	// Path is the keyset file.
	Path string `json:"path"`
	// PrimaryKeyID is the key new encryptions use.
	PrimaryKeyID uint32 `json:"primary_key_id"`
	// Keys lists every key in keyset order.
	Keys []KeyInfo `json:"keys"`
	// Encrypted is false only for a dev-mode cleartext keyset.
	Encrypted bool `json:"encrypted"`
	// KEK is the kind of KEK source (KEKKindEnv, …), never a secret.
	KEK string `json:"kek"`
}

// Holds reports whether the keyset decrypts what key id sealed: it has
// that key, enabled. (A disabled key decrypts nothing.)
func (i Info) Holds(id uint32) bool {
	for _, k := range i.Keys {
		if k.ID == id && k.Status == StatusEnabled {
			return true
		}
	}
	return false
}

// KeyInfo describes one key of a keyset.
type KeyInfo struct {
	// ID is the Tink key id, also found in the prefix of its ciphertexts.
	ID uint32 `json:"id"`
	// Status is StatusEnabled, StatusDisabled or StatusDestroyed.
	Status string `json:"status"`
	// Type is a short name such as KeyTypeAES256GCM.
	Type string `json:"type"`
	// TypeURL is Tink's type URL of the key.
	TypeURL string `json:"type_url"`
	// Primary marks the key new encryptions use.
	Primary bool `json:"primary"`
}

// Keyset is a loaded keyset: an immutable value holding the cached AEAD
// primitive and the keyset's description. Safe for concurrent use.
type Keyset struct {
	primitive tink.AEAD
	info      Info
}

// AEAD returns the keyset's primitive, built once per load. Encrypt uses the
// primary key; Decrypt accepts any enabled key, routed by the ciphertext's
// key-id prefix.
func (k *Keyset) AEAD() tink.AEAD { return k.primitive }

// PrimaryKeyID is the id of the key new ciphertexts are made with. A stored
// ciphertext whose KeyIDOf differs needs a rewrap before its key is disabled.
func (k *Keyset) PrimaryKeyID() uint32 { return k.info.PrimaryKeyID }

// Info describes the keyset as it was loaded.
func (k *Keyset) Info() Info {
	info := k.info
	info.Keys = slices.Clone(k.info.Keys)
	return info
}

// String describes the keyset without key material, so printing a Keyset by
// accident is harmless.
func (k *Keyset) String() string {
	return fmt.Sprintf("keysets.Keyset{path=%s primary=%d keys=%d kek=%s}", k.info.Path, k.info.PrimaryKeyID, len(k.info.Keys), k.info.KEK)
}

// GoString is String, for %#v.
func (k *Keyset) GoString() string { return k.String() }

// KeyIDOf returns the key id in the Tink prefix of a ciphertext made by a
// keyset of this package (0x01 then the big-endian key id). ok is false for
// input too short or without that prefix.
func KeyIDOf(ciphertext []byte) (keyID uint32, ok bool) {
	if len(ciphertext) < tinkPrefixSize || ciphertext[0] != tinkPrefixVersion {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:tinkPrefixSize]), true
}

// Create makes a new keyset with one AES256_GCM primary key and writes it to
// cfg.Path (0600, atomically, creating the directory 0700 if needed). It
// never overwrites an existing file: ErrExists.
func Create(ctx context.Context, cfg Config) (*Keyset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(cfg.Path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, cfg.Path)
	}
	log := cfg.logger()
	kek, err := cfg.KEK.kek(ctx)
	if err != nil {
		return nil, err
	}
	if kek == nil {
		warnCleartext(log, cfg.Path, "create")
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("keysets: generate keyset: %w", err)
	}
	ks, err := newKeyset(h, cfg, kek != nil)
	if err != nil {
		return nil, err
	}
	data, err := encodeVerified(ctx, h, cfg, kek)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("keysets: create keyset directory: %w", err)
	}
	if err := writeFileAtomic(cfg.Path, data, true); err != nil {
		return nil, err
	}
	log.Info("keyset created", "path", cfg.Path, "kek", cfg.KEK.String(), "primary_key_id", ks.info.PrimaryKeyID)
	return ks, nil
}

// Load reads, decrypts and checks the keyset at cfg.Path and builds its
// AEAD primitive. In dev mode it logs the cleartext warning, every time.
func Load(ctx context.Context, cfg Config) (*Keyset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h, kek, err := load(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ks, err := newKeyset(h, cfg, kek != nil)
	if err != nil {
		return nil, err
	}
	cfg.logger().Debug("keyset loaded", "path", cfg.Path, "kek", cfg.KEK.String(), "primary_key_id", ks.info.PrimaryKeyID, "keys", len(ks.info.Keys))
	return ks, nil
}

// Rotate adds a fresh AES256_GCM key to the keyset at cfg.Path, makes it
// primary and writes the keyset back atomically. Old keys stay enabled, so
// existing ciphertexts keep decrypting. Processes holding a loaded Keyset
// keep encrypting under the old primary until they Load again.
func Rotate(ctx context.Context, cfg Config) (Info, error) {
	var newID uint32
	info, err := modify(ctx, cfg, "rotate", func(m *keyset.Manager, _ Info) (bool, error) {
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return false, fmt.Errorf("keysets: add key: %w", err)
		}
		if err := m.SetPrimary(id); err != nil {
			return false, fmt.Errorf("keysets: set primary: %w", err)
		}
		newID = id
		return true, nil
	})
	if err != nil {
		return Info{}, err
	}
	cfg.logger().Info("keyset rotated", "path", cfg.Path, "primary_key_id", newID, "keys", len(info.Keys))
	return info, nil
}

// Disable disables the non-primary key keyID and writes the keyset back.
// Ciphertexts under that key stop decrypting on the next Load: rewrap them
// first. Disabling the primary is refused (ErrPrimaryKey), an unknown id is
// ErrKeyNotFound, and disabling a disabled key changes nothing.
func Disable(ctx context.Context, cfg Config, keyID uint32) (Info, error) {
	info, _, err := DisableKey(ctx, cfg, keyID, nil)
	return info, err
}

// DisableKey is Disable with a last check: when the key is found, is not
// the primary and is enabled, check (if not nil) runs while the keyset's
// file lock is held, before anything is written, and an error from it
// leaves the file unchanged and is returned as is. A caller counts there
// what still needs the key, so no rotation of the same file can land in
// between. changed is false when the key was already disabled.
func DisableKey(ctx context.Context, cfg Config, keyID uint32, check func(context.Context, KeyInfo) error) (info Info, changed bool, err error) {
	info, err = modify(ctx, cfg, "disable", func(m *keyset.Manager, info Info) (bool, error) {
		k, err := findKey(info, keyID)
		if err != nil {
			return false, err
		}
		if k.Primary {
			return false, fmt.Errorf("%w: key %d", ErrPrimaryKey, keyID)
		}
		if k.Status == StatusDisabled {
			return false, nil
		}
		if check != nil {
			if err := check(ctx, k); err != nil {
				return false, err
			}
		}
		if err := m.Disable(keyID); err != nil {
			return false, fmt.Errorf("keysets: disable key %d: %w", keyID, err)
		}
		changed = true
		return true, nil
	})
	if err != nil {
		return Info{}, false, err
	}
	if changed {
		cfg.logger().Info("keyset key disabled", "path", cfg.Path, "key_id", keyID)
	}
	return info, changed, nil
}

// Enable re-enables key keyID, undoing a Disable that came before every
// ciphertext under it was rewrapped. Enabling an enabled key changes nothing.
func Enable(ctx context.Context, cfg Config, keyID uint32) (Info, error) {
	info, _, err := EnableKey(ctx, cfg, keyID)
	return info, err
}

// EnableKey is Enable, and reports whether the key was disabled before.
func EnableKey(ctx context.Context, cfg Config, keyID uint32) (info Info, changed bool, err error) {
	info, err = modify(ctx, cfg, "enable", func(m *keyset.Manager, info Info) (bool, error) {
		k, err := findKey(info, keyID)
		if err != nil {
			return false, err
		}
		if k.Status == StatusEnabled {
			return false, nil
		}
		if err := m.Enable(keyID); err != nil {
			return false, fmt.Errorf("keysets: enable key %d: %w", keyID, err)
		}
		changed = true
		return true, nil
	})
	if err != nil {
		return Info{}, false, err
	}
	if changed {
		cfg.logger().Info("keyset key enabled", "path", cfg.Path, "key_id", keyID)
	}
	return info, changed, nil
}

// Encrypt turns the cleartext (dev-mode) keyset at cfg.Path into one
// encrypted under cfg.KEK, in place: under the keyset's file lock, it
// reads the cleartext keyset, encrypts it, decrypts the result to check
// it, and replaces the file atomically (0600). The keys, their ids and
// statuses are unchanged, so every stored ciphertext still decrypts. A
// file that is encrypted already is ErrAlreadyEncrypted; cfg.KEK must not
// be Cleartext (ErrInvalidConfig).
func Encrypt(ctx context.Context, cfg Config) (Info, error) {
	if err := cfg.Validate(); err != nil {
		return Info{}, err
	}
	if cfg.KEK.Kind() == KEKKindCleartext {
		return Info{}, fmt.Errorf("%w: Encrypt needs a KEK, not Cleartext()", ErrInvalidConfig)
	}
	if _, err := os.Lstat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, cfg.Path)
	}
	unlock, err := lockPath(ctx, cfg.Path+".lock")
	if err != nil {
		return Info{}, err
	}
	defer unlock()
	data, err := readSecureFile(cfg.Path, "keyset", maxKeysetFileSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("%w: %s", ErrNotFound, cfg.Path)
		}
		return Info{}, err
	}
	defer clear(data)
	format, err := probeFormat(data)
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s: %v", ErrInvalidKeyset, cfg.Path, err)
	}
	if format == formatEncrypted {
		return Info{}, fmt.Errorf("%w: %s", ErrAlreadyEncrypted, cfg.Path)
	}
	dev := Config{Path: cfg.Path, KEK: Cleartext(), Logger: cfg.logger()}
	h, err := decode(ctx, data, dev, nil)
	if err != nil {
		return Info{}, err
	}
	kek, err := cfg.KEK.kek(ctx)
	if err != nil {
		return Info{}, err
	}
	ks, err := newKeyset(h, cfg, true)
	if err != nil {
		return Info{}, err
	}
	out, err := encodeVerified(ctx, h, cfg, kek)
	if err != nil {
		return Info{}, err
	}
	defer clear(out)
	if err := writeFileAtomic(cfg.Path, out, false); err != nil {
		return Info{}, err
	}
	cfg.logger().Info("keyset encrypted", "path", cfg.Path, "kek", cfg.KEK.String(), "primary_key_id", ks.info.PrimaryKeyID)
	return ks.Info(), nil
}

func findKey(info Info, keyID uint32) (KeyInfo, error) {
	for _, k := range info.Keys {
		if k.ID == keyID {
			return k, nil
		}
	}
	return KeyInfo{}, fmt.Errorf("%w: %d", ErrKeyNotFound, keyID)
}

// modify is the locked read-modify-write behind Rotate, Disable and Enable.
// change reports whether it altered the keyset; if not, nothing is written.
func modify(ctx context.Context, cfg Config, op string, change func(*keyset.Manager, Info) (bool, error)) (Info, error) {
	if err := cfg.Validate(); err != nil {
		return Info{}, err
	}
	// Check first so a typo'd path does not leave a stray lock file.
	if _, err := os.Lstat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, cfg.Path)
	}
	unlock, err := lockPath(ctx, cfg.Path+".lock")
	if err != nil {
		return Info{}, err
	}
	defer unlock()

	h, kek, err := load(ctx, cfg)
	if err != nil {
		return Info{}, err
	}
	m := keyset.NewManagerFromHandle(h)
	changed, err := change(m, describe(h, cfg, kek != nil))
	if err != nil {
		return Info{}, err
	}
	if !changed {
		return describe(h, cfg, kek != nil), nil
	}
	nh, err := m.Handle()
	if err != nil {
		return Info{}, fmt.Errorf("keysets: %s: %w", op, err)
	}
	ks, err := newKeyset(nh, cfg, kek != nil)
	if err != nil {
		return Info{}, err
	}
	data, err := encodeVerified(ctx, nh, cfg, kek)
	if err != nil {
		return Info{}, err
	}
	defer clear(data)
	if err := writeFileAtomic(cfg.Path, data, false); err != nil {
		return Info{}, err
	}
	return ks.Info(), nil
}

// load reads and decodes cfg.Path, returning the handle and the KEK AEAD it
// was opened with (nil in dev mode).
func load(ctx context.Context, cfg Config) (*keyset.Handle, tink.AEADWithContext, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	data, err := readSecureFile(cfg.Path, "keyset", maxKeysetFileSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, cfg.Path)
		}
		return nil, nil, err
	}
	defer clear(data)
	kek, err := cfg.KEK.kek(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Warn only about a file that is cleartext: an encrypted one met by
	// dev mode is refused below (ErrKEKRequired), and warning about
	// cleartext there would say the opposite of what is on disk.
	if kek == nil {
		if format, _ := probeFormat(data); format == formatCleartext {
			warnCleartext(cfg.logger(), cfg.Path, "load")
		}
	}
	h, err := decode(ctx, data, cfg, kek)
	if err != nil {
		return nil, nil, err
	}
	return h, kek, nil
}

// fileFormat is what a keyset file holds, told apart by its top-level JSON
// fields.
type fileFormat int

const (
	formatEncrypted fileFormat = iota + 1
	formatCleartext
)

// probeFormat looks only at field names, so it never has to hold decoded
// key material of a file it is about to refuse.
func probeFormat(data []byte) (fileFormat, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return 0, errors.New("not a JSON object")
	}
	switch {
	case fields["encryptedKeyset"] != nil:
		return formatEncrypted, nil
	case fields["key"] != nil:
		return formatCleartext, nil
	default:
		return 0, errors.New("neither an encrypted nor a cleartext Tink JSON keyset")
	}
}

// decode turns file bytes into a checked handle. kek nil means dev mode.
func decode(ctx context.Context, data []byte, cfg Config, kek tink.AEADWithContext) (*keyset.Handle, error) {
	format, err := probeFormat(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKeyset, cfg.Path, err)
	}
	var h *keyset.Handle
	switch format {
	case formatCleartext:
		if kek != nil {
			return nil, fmt.Errorf("%w: %s holds a cleartext keyset but KEK %s is configured; encrypt it under that KEK with `connhost keyset encrypt`, or serve it without a KEK (dev mode)", ErrCleartextNotAllowed, cfg.Path, cfg.KEK)
		}
		h, err = insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(data)))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: malformed cleartext keyset", ErrInvalidKeyset, cfg.Path)
		}
	case formatEncrypted:
		if kek == nil {
			return nil, fmt.Errorf("%w: %s", ErrKEKRequired, cfg.Path)
		}
		ek, err := keyset.NewJSONReader(bytes.NewReader(data)).ReadEncrypted()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: malformed encrypted keyset", ErrInvalidKeyset, cfg.Path)
		}
		// Tink flattens the KEK's error into a string; record it on the way
		// through to tell a wrong KEK from a malformed keyset.
		rec := &recordingAEAD{AEADWithContext: kek}
		h, err = keyset.ReadWithContext(ctx, &keyset.MemReaderWriter{EncryptedKeyset: ek}, rec, []byte(AssociatedData))
		if err != nil {
			switch {
			case rec.err != nil && (errors.Is(rec.err, context.Canceled) || errors.Is(rec.err, context.DeadlineExceeded)):
				return nil, fmt.Errorf("keysets: decrypt %s: %w", cfg.Path, rec.err)
			case rec.err != nil:
				return nil, &DecryptError{Path: cfg.Path, KEK: cfg.KEK.String(), Err: rec.err}
			default:
				return nil, fmt.Errorf("%w: %s: decrypted keyset is malformed", ErrInvalidKeyset, cfg.Path)
			}
		}
	}
	if err := checkHandle(h); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKeyset, cfg.Path, err)
	}
	return h, nil
}

// checkHandle enforces what the rest of connhost relies on: a primary key,
// and Tink-prefixed keys so every ciphertext names its key (KeyIDOf).
func checkHandle(h *keyset.Handle) error {
	if _, err := h.Primary(); err != nil {
		return errors.New("no primary key")
	}
	for _, k := range h.KeysetInfo().GetKeyInfo() {
		if k.GetOutputPrefixType() != tinkpb.OutputPrefixType_TINK {
			return fmt.Errorf("key %d has output prefix %s, want TINK", k.GetKeyId(), k.GetOutputPrefixType())
		}
	}
	return nil
}

// encodeVerified serializes h (encrypted under kek, or cleartext when kek is
// nil) and decodes the result again before anyone writes it: a KEK that can
// encrypt but not decrypt must not replace a readable keyset.
func encodeVerified(ctx context.Context, h *keyset.Handle, cfg Config, kek tink.AEADWithContext) ([]byte, error) {
	var buf bytes.Buffer
	if kek == nil {
		if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
			return nil, fmt.Errorf("keysets: serialize keyset: %w", err)
		}
	} else if err := h.WriteWithContext(ctx, keyset.NewJSONWriter(&buf), kek, []byte(AssociatedData)); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("keysets: encrypt keyset: %w", ctxErr)
		}
		// Tink's message embeds the (already redacted) KEK error.
		return nil, &KEKError{Source: cfg.KEK.String(), Reason: "cannot encrypt the keyset", Err: &redactedError{msg: err.Error()}}
	}
	buf.WriteByte('\n')
	data := buf.Bytes()
	back, err := decode(ctx, data, cfg, kek)
	if err != nil {
		clear(data)
		return nil, fmt.Errorf("keysets: the keyset just encrypted does not read back, nothing written: %w", err)
	}
	if !proto.Equal(back.KeysetInfo(), h.KeysetInfo()) {
		clear(data)
		return nil, errors.New("keysets: the keyset just encrypted reads back different, nothing written")
	}
	return data, nil
}

// newKeyset builds the cached primitive and description of h.
func newKeyset(h *keyset.Handle, cfg Config, encrypted bool) (*Keyset, error) {
	p, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not an AEAD keyset: %v", ErrInvalidKeyset, cfg.Path, err)
	}
	return &Keyset{primitive: p, info: describe(h, cfg, encrypted)}, nil
}

// describe lists h's keys from Tink's KeysetInfo (ids, statuses, type URLs)
// and the key parameters (size) — never key bytes.
func describe(h *keyset.Handle, cfg Config, encrypted bool) Info {
	ki := h.KeysetInfo()
	types := make(map[uint32]string, h.Len())
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			continue
		}
		if k, ok := e.Key().(*aesgcm.Key); ok {
			if p, ok := k.Parameters().(*aesgcm.Parameters); ok {
				types[e.KeyID()] = fmt.Sprintf("AES%d_GCM", p.KeySizeInBytes()*8)
			}
		}
	}
	info := Info{
		Path:         cfg.Path,
		PrimaryKeyID: ki.GetPrimaryKeyId(),
		Keys:         make([]KeyInfo, 0, len(ki.GetKeyInfo())),
		Encrypted:    encrypted,
		KEK:          cfg.KEK.Kind(),
	}
	for _, k := range ki.GetKeyInfo() {
		typ, ok := types[k.GetKeyId()]
		if !ok {
			typ = shortTypeName(k.GetTypeUrl())
		}
		info.Keys = append(info.Keys, KeyInfo{
			ID:      k.GetKeyId(),
			Status:  k.GetStatus().String(),
			Type:    typ,
			TypeURL: k.GetTypeUrl(),
			Primary: k.GetKeyId() == ki.GetPrimaryKeyId(),
		})
	}
	return info
}

// shortTypeName turns "type.googleapis.com/google.crypto.tink.AesGcmKey"
// into "AesGcmKey".
func shortTypeName(typeURL string) string {
	if i := strings.LastIndexByte(typeURL, '.'); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}

func warnCleartext(log hclog.Logger, path, op string) {
	log.Warn("INSECURE DEV MODE: the keyset is stored in CLEARTEXT and anyone who can read the file can decrypt every stored credential; outside local development encrypt it with `connhost keyset encrypt` under a KEK (env, file or KMS)",
		"path", path, "operation", op)
}

// recordingAEAD remembers the KEK's decryption error, which Tink would
// otherwise flatten into its own message.
type recordingAEAD struct {
	tink.AEADWithContext
	err error
}

func (r *recordingAEAD) DecryptWithContext(ctx context.Context, ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := r.AEADWithContext.DecryptWithContext(ctx, ciphertext, associatedData)
	if err != nil {
		r.err = err
	}
	return pt, err
}

var (
	_ tink.AEADWithContext = (*recordingAEAD)(nil)
	_ fmt.Stringer         = (*Keyset)(nil)
	_ fmt.GoStringer       = (*Keyset)(nil)
)
