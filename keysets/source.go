package keysets

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEK kinds, as reported by Source.Kind and Info.KEK.
const (
	KEKKindEnv       = "env"
	KEKKindFile      = "file"
	KEKKindKMS       = "kms"
	KEKKindCleartext = "cleartext"
)

// EnvAdvice is what connhost says whenever the KEK comes from an
// environment variable: the variable stays in the process environment for
// the process's life.
const EnvAdvice = "the KEK comes from an environment variable, which stays readable in /proc/<pid>/environ of the process (to its user and to root) for as long as it runs: prefer --kek-file (mode 0600, outside the data dir) or --kms-uri"

// DefaultKEKEnv is the conventional environment variable for an env KEK.
const DefaultKEKEnv = "CONNHOST_KEK"

// KEKSize is the size in bytes of an env or file KEK (an AES-256 key).
const KEKSize = 32

// maxKEKFileSize bounds what is read from a KEK file: the base64 of 32 bytes
// plus generous whitespace.
const maxKEKFileSize = 4 << 10

// Source is where the key-encryption key comes from. Construct one with
// KEKFromEnv, KEKFromFile, KEKFromURI or Cleartext; the interface is sealed
// because dev mode and secret redaction depend on knowing every kind.
type Source interface {
	// Kind is one of KEKKindEnv, KEKKindFile, KEKKindKMS, KEKKindCleartext.
	Kind() string
	// String describes the source without any secret, for logs and errors.
	String() string

	validate() error
	// kek returns the AEAD that wraps the keyset, or nil in dev mode. The
	// secret is read at call time, not at construction.
	kek(ctx context.Context) (tink.AEADWithContext, error)
}

// KEKFromEnv returns a Source reading the base64 of a 32-byte key from the
// environment variable name each time a keyset is loaded or written.
func KEKFromEnv(name string) Source { return envSource{name: name} }

// KEKFromFile returns a Source reading the base64 of a 32-byte key from the
// file at path. The file must not be accessible by group or others.
func KEKFromFile(path string) Source { return fileSource{path: path} }

// KEKFromURI returns a Source whose KEK is a key in a KMS. A client
// registered in Tink's KMS client registry (registry.RegisterKMSClient)
// serves uri when one claims it; otherwise hcvault:// URIs are served by
// HashiCorp Vault's transit engine (see VaultScheme), with VAULT_TOKEN and
// the Vault client's other environment variables.
func KEKFromURI(uri string) Source { return kmsSource{uri: uri} }

// Cleartext returns the dev-mode Source: the keyset is stored unencrypted
// (mode 0600) and every load logs a warning. Use it only for the embedded
// default on a developer machine.
func Cleartext() Source { return cleartextSource{} }

type envSource struct{ name string }

func (s envSource) Kind() string   { return KEKKindEnv }
func (s envSource) String() string { return "env " + s.name }

func (s envSource) validate() error {
	if s.name == "" || strings.ContainsAny(s.name, "=\x00") {
		return fmt.Errorf("%w: KEK environment variable name %q is not valid", ErrInvalidConfig, s.name)
	}
	return nil
}

func (s envSource) kek(ctx context.Context) (tink.AEADWithContext, error) {
	v, ok := os.LookupEnv(s.name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, &KEKError{Source: s.String(), Reason: "variable is not set or empty"}
	}
	key, err := decodeKEK(v)
	if err != nil {
		return nil, &KEKError{Source: s.String(), Reason: err.Error()}
	}
	return rawKEK(key)
}

type fileSource struct{ path string }

func (s fileSource) Kind() string   { return KEKKindFile }
func (s fileSource) String() string { return "file " + s.path }

func (s fileSource) validate() error {
	if s.path == "" {
		return fmt.Errorf("%w: KEK file path is empty", ErrInvalidConfig)
	}
	return nil
}

func (s fileSource) kek(ctx context.Context) (tink.AEADWithContext, error) {
	data, err := readSecureFile(s.path, "KEK", maxKEKFileSize)
	if err != nil {
		var perm *PermissionError
		switch {
		case errors.As(err, &perm):
			return nil, err
		case errors.Is(err, fs.ErrNotExist):
			return nil, &KEKError{Source: s.String(), Reason: "file not found"}
		default:
			return nil, &KEKError{Source: s.String(), Reason: "cannot read file", Err: err}
		}
	}
	defer clear(data)
	key, err := decodeKEK(string(data))
	if err != nil {
		return nil, &KEKError{Source: s.String(), Reason: err.Error()}
	}
	return rawKEK(key)
}

type kmsSource struct{ uri string }

func (s kmsSource) Kind() string   { return KEKKindKMS }
func (s kmsSource) String() string { return "kms " + redactURI(s.uri) }

func (s kmsSource) validate() error {
	if !strings.Contains(s.uri, "://") {
		return fmt.Errorf("%w: KMS key URI %s has no scheme", ErrInvalidConfig, redactURI(s.uri))
	}
	return nil
}

func (s kmsSource) kek(ctx context.Context) (tink.AEADWithContext, error) {
	// registry.GetKMSClient's own error repeats the URI; don't use it.
	client, err := registry.GetKMSClient(s.uri)
	if err != nil {
		if client, err = builtinKMSClient(s.uri); err != nil {
			return nil, &KEKError{Source: s.String(), Reason: redact(err, s.uri).Error()}
		}
	}
	a, err := client.GetAEAD(s.uri)
	if err != nil {
		return nil, &KEKError{Source: s.String(), Reason: "KMS client could not provide the key", Err: redact(err, s.uri)}
	}
	if a == nil {
		return nil, &KEKError{Source: s.String(), Reason: "KMS client returned no AEAD"}
	}
	return &ctxAEAD{aead: a, secret: s.uri}, nil
}

type cleartextSource struct{}

func (cleartextSource) Kind() string    { return KEKKindCleartext }
func (cleartextSource) String() string  { return "cleartext (dev mode)" }
func (cleartextSource) validate() error { return nil }

func (cleartextSource) kek(context.Context) (tink.AEADWithContext, error) { return nil, nil }

// decodeKEK accepts standard or URL-safe base64, padded or not, surrounded
// by whitespace. The alphabets differ only in characters exclusive to each,
// so no input decodes to two different keys. Errors never echo the input.
func decodeKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KEKSize {
			n := len(key)
			clear(key)
			return nil, fmt.Errorf("decodes to %d bytes, want %d", n, KEKSize)
		}
		return key, nil
	}
	return nil, fmt.Errorf("not the base64 of %d bytes", KEKSize)
}

// rawKEK turns 32 raw bytes into an AES-256-GCM AEAD and wipes the caller's
// copy (Tink keeps its own).
func rawKEK(key []byte) (tink.AEADWithContext, error) {
	defer clear(key)
	a, err := subtle.NewAESGCM(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKEK, err)
	}
	return &ctxAEAD{aead: a}, nil
}

// ctxAEAD adapts a tink.AEAD to tink.AEADWithContext, honours cancellation,
// prefers the AEAD's own context-aware methods (remote KMS calls) and
// scrubs secret from every error it returns.
type ctxAEAD struct {
	aead   tink.AEAD
	secret string
}

func (a *ctxAEAD) EncryptWithContext(ctx context.Context, plaintext, associatedData []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		ct  []byte
		err error
	)
	if c, ok := a.aead.(tink.AEADWithContext); ok {
		ct, err = c.EncryptWithContext(ctx, plaintext, associatedData)
	} else {
		ct, err = a.aead.Encrypt(plaintext, associatedData)
	}
	if err != nil {
		return nil, redact(err, a.secret)
	}
	return ct, nil
}

func (a *ctxAEAD) DecryptWithContext(ctx context.Context, ciphertext, associatedData []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		pt  []byte
		err error
	)
	if c, ok := a.aead.(tink.AEADWithContext); ok {
		pt, err = c.DecryptWithContext(ctx, ciphertext, associatedData)
	} else {
		pt, err = a.aead.Decrypt(ciphertext, associatedData)
	}
	if err != nil {
		return nil, redact(err, a.secret)
	}
	return pt, nil
}

// redactURI keeps only the scheme of a KMS URI: fake-kms URIs embed their
// key, and real ones need not appear in logs to be useful.
func redactURI(uri string) string {
	scheme, _, ok := strings.Cut(uri, "://")
	if !ok {
		return "[redacted]"
	}
	return scheme + "://[redacted]"
}

// redact returns err's message with every occurrence of secret scrubbed,
// detached from err's chain. Context errors pass through intact.
func redact(err error, secret string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := err.Error()
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, redactURI(secret))
	}
	return &redactedError{msg: msg}
}

// GenerateKEK returns the standard base64 of 32 fresh random bytes, suitable
// for an env KEK or for WriteKEKFile. The caller must treat it as a secret.
func GenerateKEK() string {
	key := make([]byte, KEKSize)
	defer clear(key)
	// crypto/rand.Read never fails (it crashes the program instead).
	_, _ = rand.Read(key)
	return base64.StdEncoding.EncodeToString(key)
}

// WriteKEKFile stores kek (the base64 of 32 bytes, as from GenerateKEK) at
// path with mode 0600, atomically, creating the directory (0700) if needed.
// It refuses to overwrite an existing file (ErrExists): replacing a KEK
// strands the keyset encrypted under it.
func WriteKEKFile(path, kek string) error {
	if path == "" {
		return fmt.Errorf("%w: KEK file path is empty", ErrInvalidConfig)
	}
	key, err := decodeKEK(kek)
	if err != nil {
		return &KEKError{Source: "value", Reason: err.Error()}
	}
	clear(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keysets: create directory for KEK file: %w", err)
	}
	return writeFileAtomic(path, []byte(strings.TrimSpace(kek)+"\n"), true)
}

var (
	_ Source               = envSource{}
	_ Source               = fileSource{}
	_ Source               = kmsSource{}
	_ Source               = cleartextSource{}
	_ tink.AEADWithContext = (*ctxAEAD)(nil)
)

// CheckKEK reports whether src can give its key-encryption key now: the
// variable set, the file readable and private, the KMS URI served by a
// client. Nothing is written. A host about to create a keyset checks this
// first, so a refusal leaves no store or file behind.
func CheckKEK(ctx context.Context, src Source) error {
	if src == nil {
		return fmt.Errorf("%w: no KEK source", ErrInvalidConfig)
	}
	if err := src.validate(); err != nil {
		return err
	}
	_, err := src.kek(ctx)
	return err
}
