package keysets

import (
	"errors"
	"fmt"
	"io/fs"
)

// Sentinel errors. Match them with errors.Is; the typed errors below wrap
// them and add the fields a caller needs (path, mode, KEK kind).
var (
	// ErrInvalidConfig reports a Config (or Source) that fails Validate.
	ErrInvalidConfig = errors.New("keysets: invalid config")

	// ErrNotFound reports that the keyset file does not exist.
	ErrNotFound = errors.New("keysets: keyset file not found")

	// ErrExists reports that Create (or WriteKEKFile) found a file already at
	// the path; existing keys are never overwritten.
	ErrExists = errors.New("keysets: file already exists")

	// ErrInsecurePermissions reports a keyset or KEK file that group or
	// others may access. See PermissionError.
	ErrInsecurePermissions = errors.New("keysets: file is accessible by group or others")

	// ErrWrongKEK reports a keyset that does not decrypt under the
	// configured KEK: wrong key, wrong associated data, or a tampered file.
	// See DecryptError.
	ErrWrongKEK = errors.New("keysets: keyset does not decrypt under the configured KEK")

	// ErrBadKEK reports a KEK that is missing, malformed or unobtainable
	// (unset variable, not base64 of 32 bytes, no KMS client for the URI).
	// See KEKError.
	ErrBadKEK = errors.New("keysets: KEK unavailable or malformed")

	// ErrCleartextNotAllowed reports a cleartext keyset file met by a
	// configuration that did not opt into dev mode with Cleartext().
	ErrCleartextNotAllowed = errors.New("keysets: cleartext keyset refused: dev mode not enabled")

	// ErrKEKRequired reports an encrypted keyset file met by a dev-mode
	// (Cleartext) configuration.
	ErrKEKRequired = errors.New("keysets: keyset is encrypted: configure its KEK")

	// ErrAlreadyEncrypted reports an Encrypt of a keyset file that is
	// encrypted already.
	ErrAlreadyEncrypted = errors.New("keysets: the keyset is already encrypted")

	// ErrInvalidKeyset reports a keyset file that is not a usable Tink AEAD
	// keyset (malformed JSON, no primary, keys without Tink's prefix, …).
	ErrInvalidKeyset = errors.New("keysets: invalid keyset")

	// ErrKeyNotFound reports a key id that is not in the keyset.
	ErrKeyNotFound = errors.New("keysets: no key with that id")

	// ErrPrimaryKey reports an attempt to disable the primary key.
	ErrPrimaryKey = errors.New("keysets: the primary key cannot be disabled")
)

// PermissionError reports a keyset or KEK file whose mode grants group or
// others any access. It names the path and mode, never the contents.
type PermissionError struct {
	// Path is the file as configured.
	Path string
	// Mode holds the file's permission bits.
	Mode fs.FileMode
	// File says which file: "keyset" or "KEK".
	File string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("keysets: %s file %s has mode %04o: it must not be accessible by group or others (chmod 600 %s)",
		e.File, e.Path, uint32(e.Mode.Perm()), e.Path)
}

// Is makes errors.Is(err, ErrInsecurePermissions) true.
func (e *PermissionError) Is(target error) bool { return target == ErrInsecurePermissions }

// DecryptError reports that the keyset at Path did not decrypt under the
// configured KEK. Its message never holds key bytes or the KEK.
type DecryptError struct {
	// Path is the keyset file.
	Path string
	// KEK describes the KEK source without its secret (e.g. "env CONNHOST_KEK").
	KEK string
	// Err is the (redacted) cause reported by the KEK AEAD, if any.
	Err error
}

func (e *DecryptError) Error() string {
	msg := fmt.Sprintf("keysets: keyset %s does not decrypt under KEK %s (wrong KEK, or the file was altered)", e.Path, e.KEK)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes ErrWrongKEK and the cause.
func (e *DecryptError) Unwrap() []error { return withCause(ErrWrongKEK, e.Err) }

// KEKError reports a KEK that could not be obtained or is malformed.
type KEKError struct {
	// Source describes the KEK source without its secret.
	Source string
	// Reason says what is wrong, e.g. "variable is not set".
	Reason string
	// Err is the (redacted) cause, if any.
	Err error
}

func (e *KEKError) Error() string {
	msg := fmt.Sprintf("keysets: KEK %s: %s", e.Source, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes ErrBadKEK and the cause.
func (e *KEKError) Unwrap() []error { return withCause(ErrBadKEK, e.Err) }

func withCause(sentinel, cause error) []error {
	if cause == nil {
		return []error{sentinel}
	}
	return []error{sentinel, cause}
}

// redactedError keeps only a scrubbed message of a foreign error, so a
// secret in the original (a fake-kms URI embeds its key) cannot escape
// through Unwrap.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

var (
	_ error = (*PermissionError)(nil)
	_ error = (*DecryptError)(nil)
	_ error = (*KEKError)(nil)
	_ error = (*redactedError)(nil)
)
