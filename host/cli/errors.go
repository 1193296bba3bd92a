package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/connhost/connhost/host/api/client"
)

// Exit statuses. Scripts can tell a mistake in the command line (2) from
// a refusal or failure reported by the host (1) and from a run that was
// started but did not succeed (3).
const (
	ExitOK        = 0
	ExitError     = 1 // an API error, an unreachable host, a local failure
	ExitUsage     = 2 // bad flags or arguments, a secret in argv, malformed input
	ExitRunFailed = 3 // run --wait/--follow: the run ended but did not succeed
)

// Error codes of errors the CLI raises itself (API errors keep the
// server's code).
const (
	CodeUsage        = "usage"
	CodeSecretInArgv = "secret_in_argv"
	CodeInvalidInput = "invalid_input"
	CodeUnavailable  = "unavailable"
	CodeNoToken      = "no_token"
	CodeBadResponse  = "bad_response"
	CodeInterrupted  = "interrupted"
	CodeKeyset       = "keyset"
	CodeServe        = "serve"
	CodeLocal        = "error"
)

// cmdError is an error with the code and exit status the CLI reports it
// with: "error: <code>: <message>" on stderr.
type cmdError struct {
	code string
	msg  string
	exit int
}

func (e *cmdError) Error() string { return e.code + ": " + e.msg }

func usageErrorf(format string, args ...any) error {
	return &cmdError{code: CodeUsage, msg: fmt.Sprintf(format, args...), exit: ExitUsage}
}

func newError(code string, exit int, format string, args ...any) error {
	return &cmdError{code: code, msg: fmt.Sprintf(format, args...), exit: exit}
}

// classify turns an error returned by a command's RunE into a cmdError. It
// is applied only to RunE errors: any other error that reaches Run came
// from cobra's own parsing and is a usage error.
func classify(err error) *cmdError {
	var ce *cmdError
	if errors.As(err, &ce) {
		return ce
	}
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		msg := ae.Message
		if ae.Field != "" {
			msg += " (field " + ae.Field + ")"
		}
		if ae.RunID != "" && !strings.Contains(msg, ae.RunID) {
			msg += " (refused run " + ae.RunID + ")"
		}
		if msg == "" {
			msg = fmt.Sprintf("HTTP status %d", ae.Status)
		}
		return &cmdError{code: ae.Code, msg: msg, exit: ExitError}
	case errors.Is(err, context.Canceled):
		return &cmdError{code: CodeInterrupted, msg: "cancelled before the command completed", exit: ExitError}
	case errors.Is(err, client.ErrUnavailable):
		return &cmdError{code: CodeUnavailable, msg: err.Error(), exit: ExitError}
	case errors.Is(err, client.ErrBadResponse):
		return &cmdError{code: CodeBadResponse, msg: err.Error(), exit: ExitError}
	case errors.Is(err, client.ErrInvalidAddr), errors.Is(err, client.ErrEmptyID):
		return &cmdError{code: CodeUsage, msg: err.Error(), exit: ExitUsage}
	default:
		return &cmdError{code: CodeLocal, msg: err.Error(), exit: ExitError}
	}
}

var _ error = (*cmdError)(nil)
