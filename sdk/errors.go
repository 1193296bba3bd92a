package sdk

import (
	"errors"

	"github.com/connhost/connhost/sdk/wire"
)

// Sentinel errors returned by the methods of Run and Check. They describe
// mistakes in connector code or a run that can no longer send; a connector
// usually just returns them from Run, which fails the run with code
// connector_failed.
var (
	// ErrUndeclaredStream is returned by Emit and Progress for a stream the
	// manifest does not declare.
	ErrUndeclaredStream = errors.New("sdk: stream not declared in the manifest")
	// ErrInvalidKey is returned by Emit for an empty key or one that is not
	// valid UTF-8; records are upserted by key, so a key must name one.
	ErrInvalidKey = errors.New("sdk: invalid record key")
	// ErrInvalidJSON is returned by Emit for a json.RawMessage that is not
	// one valid JSON value.
	ErrInvalidJSON = errors.New("sdk: value is not valid JSON")
	// ErrRecordTooLarge is returned by Emit for a value whose JSON is longer
	// than MaxRecordBytes.
	ErrRecordTooLarge = errors.New("sdk: record too large")
	// ErrCheckpointTooLarge is returned by Checkpoint for a state longer
	// than MaxCheckpointBytes.
	ErrCheckpointTooLarge = errors.New("sdk: checkpoint too large")
	// ErrInvalidConfig wraps every config decoding error. A connector's
	// own config rules should wrap it too: a failure that does is
	// reported to the host as invalid_config (a config to fix, not a
	// credential to replace).
	ErrInvalidConfig = errors.New("sdk: invalid config")
	// ErrRunFinished is returned when a Run is used after Connector.Run
	// returned (for example from a goroutine that outlived it).
	ErrRunFinished = errors.New("sdk: run has finished")
)

// ErrCredentialsRequired is the typed failure for declared credentials that
// are absent or empty. The SDK returns it on its own before calling Run or
// Check, so connector code rarely needs it; a connector that finds a
// credential unusable in some other way returns CredentialRejected instead.
// errors.Is matches any failure with code credentials_required.
var ErrCredentialsRequired error = &Error{
	Code:    wire.CodeCredentialsRequired,
	Message: "declared credentials are absent or empty",
}

// Error is a typed connector failure: it reaches the host as a wire.Failure
// with the same Code, Message and Retryable. Build one with Fail, Retryable
// or CredentialRejected.
//
// Message is shown to operators, so it must not contain secret values (the
// SDK also redacts the run's credential values from it, as a safety net).
type Error struct {
	// Code is a stable failure code, such as wire.CodeConnectorFailed.
	Code string
	// Message says what went wrong, for an operator.
	Message string
	// Retryable asks the host to retry the run with backoff.
	Retryable bool
	// Err is the cause, for errors.Is and errors.As in connector code. Only
	// Message crosses the wire.
	Err error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error or a *wire.Failure with the same
// code, so errors.Is(err, ErrCredentialsRequired) matches every
// credentials_required failure whatever its message.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code
	case *wire.Failure:
		return t.Code == e.Code
	}
	return false
}

// Failure returns e as the wire type.
func (e *Error) Failure() *wire.Failure {
	return &wire.Failure{Code: e.Code, Message: e.Message, Retryable: e.Retryable}
}

// Fail returns a non-retryable failure with the code and message. An empty
// code means wire.CodeConnectorFailed.
func Fail(code, message string) error {
	if code == "" {
		code = wire.CodeConnectorFailed
	}
	return &Error{Code: code, Message: message}
}

// CredentialRejected reports that the provider refused the credential (for
// example an HTTP 401). It is not retryable: retrying with the same secret
// cannot succeed; the operator must rotate it.
func CredentialRejected(message string) error {
	return &Error{Code: wire.CodeCredentialRejected, Message: message}
}

// Retryable marks err retryable. A typed err (an *Error or *wire.Failure in
// its chain) keeps its code and message; any other error becomes
// connector_failed with err's text as the message. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: e.Code, Message: e.Message, Retryable: true, Err: err}
	}
	var f *wire.Failure
	if errors.As(err, &f) {
		return &Error{Code: f.Code, Message: f.Message, Retryable: true, Err: err}
	}
	return &Error{Code: wire.CodeConnectorFailed, Message: err.Error(), Retryable: true, Err: err}
}

// toFailure maps a connector's error to the failure the host receives: the
// outermost typed failure in the chain, or connector_failed with the
// error's text.
func toFailure(err error) *wire.Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure()
	}
	var f *wire.Failure
	if errors.As(err, &f) {
		c := *f
		return &c
	}
	if errors.Is(err, ErrInvalidConfig) {
		// A config the connector cannot decode: invalid_config, never a
		// verdict on the credential.
		return &wire.Failure{Code: wire.CodeInvalidConfig, Message: err.Error()}
	}
	return &wire.Failure{Code: wire.CodeConnectorFailed, Message: err.Error()}
}

var _ error = (*Error)(nil)
