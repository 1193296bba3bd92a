// Package failure defines the typed failure codes shared by the runner, the
// broker, the launcher, the API and the CLI. The codes are stable strings:
// operators script against them and they are stored in run rows.
package failure

import (
	"errors"
	"fmt"
)

// Code is a stable failure code.
type Code string

// The failure codes. DESIGN.md section 11 lists them. Beyond that list:
// CredentialRejected is a connector's report that the provider refused the
// credential; ConnectionPaused refuses a scheduled or retry run that races a
// pause; HostCrashed marks the runs of a host that died mid-run, found at
// the next boot; StoreCorrupt is a read or write that hit a damaged page
// of the store (the host turns not-ready: restore the store);
// InvalidConfig is a connection config the connector's schema, or the
// connector itself, refuses; Conflict is a state change the target's
// current state forbids (resuming or pausing a revoked connection,
// rotating a deleted credential): HTTP 409, and the audit's failure_code.
// The keyset codes refuse keyset operations: KeyNotFound (no such key id
// in the keyset), KeyIsPrimary (the primary key cannot be disabled),
// KeyInUse (credentials are still sealed under the key), KeysetEncrypted
// (keyset encrypt on an encrypted keyset) and KEKRequired (an operation
// that needs a KEK was given none). PluginDescribeTimeout is a plugin the
// catalog rejected because it did not answer Describe within the scan's
// deadline; PluginDirUnusable refuses a rescan of a plugin dir that is gone or
// unreadable (the catalog stays as it was).
const (
	StaticSecretUnavailable Code = "static_secret_credential_unavailable"
	CredentialsRequired     Code = "credentials_required"
	CredentialRejected      Code = "credential_rejected"
	RunActive               Code = "run_active"
	ConnectionNotFound      Code = "connection_not_found"
	ConnectionRevoked       Code = "connection_revoked"
	ConnectionPaused        Code = "connection_paused"
	ConnectorNotFound       Code = "connector_not_found"
	PluginChecksumMismatch  Code = "plugin_checksum_mismatch"
	PluginHandshakeFailed   Code = "plugin_handshake_failed"
	PluginDescribeTimeout   Code = "plugin_describe_timeout"
	PluginDirUnusable       Code = "plugin_dir_unusable"
	ConnectorFailed         Code = "connector_failed"
	ConnectorCrashed        Code = "connector_crashed"
	RunTimeout              Code = "run_timeout"
	Cancelled               Code = "cancelled"
	HostShutdown            Code = "host_shutdown"
	HostCrashed             Code = "host_crashed"
	StoreCorrupt            Code = "store_corrupt"
	InvalidConfig           Code = "invalid_config"
	Conflict                Code = "conflict"
	KeyNotFound             Code = "key_not_found"
	KeyIsPrimary            Code = "key_is_primary"
	KeyInUse                Code = "key_in_use"
	KeysetEncrypted         Code = "keyset_encrypted"
	KEKRequired             Code = "kek_required"
	Internal                Code = "internal"
)

// Error is a typed failure. Message must never hold secret bytes: every
// producer builds it from names and codes, and text that comes from a child
// process is redacted before it gets here.
type Error struct {
	Code      Code
	Message   string
	Retryable bool
	Err       error // optional cause; its text is not shown by Error()
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error with the same code, so callers can write
// errors.Is(err, failure.New(failure.RunActive, "")).
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// New returns an *Error with the code and message.
func New(code Code, format string, args ...any) *Error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, Message: msg}
}

// CodeOf returns the code of the first *Error in err's chain, Internal for
// any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Has reports whether err carries code.
func Has(err error, code Code) bool {
	return err != nil && CodeOf(err) == code
}

// IsRetryable reports whether err is a typed failure marked retryable.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}
