package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/connhost/connhost/host/api/client"
)

// Exit statuses. Scripts can tell a mistake in the command line (2) from
// a refusal or failure reported by the host (1) and from a run that was
// started but did not succeed (3).
const (
	ExitOK        = 0
	ExitError     = 1 // an API error, an unreachable host, a local failure
	ExitUsage     = 2 // bad flags or arguments, a secret in argv, malformed input
	ExitRunFailed = 3 // run --wait/--follow: the run ended (or was refused) and did not succeed
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
	CodeServe        = "serve"
	// The local keyset commands' refusals (init, encrypt).
	CodeKeysetExists   = "keyset_exists"    // init: a keyset is there already
	CodeKeysetNotFound = "keyset_not_found" // encrypt: no keyset to encrypt
	CodeHostRunning    = "host_running"     // encrypt: a host serves the data dir
	CodeKEKUnusable    = "kek_unusable"     // the KEK is malformed or cannot be obtained
	CodeInsecureFile   = "insecure_file"    // a key file group or others may read
	CodeLocal          = "local_failure"    // a local failure with no more specific code (disk full, …)
)

// codeUnauthorized is the API's code for a refused token
// (apitypes.CodeUnauthorized).
const codeUnauthorized = "unauthorized"

// cmdError is an error with the code and exit status the CLI reports it
// with: "error: <code>: <message>" on stderr and, with -o json, the object
// {"error":{"code","message",…}} on stdout.
type cmdError struct {
	code string
	msg  string
	exit int

	// detail is the message of the JSON error object when it differs from
	// msg (which, for an API error, also names the field and refused run
	// that the JSON object has as members of their own).
	detail     string
	field      string
	runID      string
	httpStatus int
	addr       string
	// printed is set when the command already printed its result on
	// stdout (the run that did not succeed): the JSON error object is then
	// not added, so stdout stays one JSON document.
	printed bool
}

func (e *cmdError) Error() string { return e.code + ": " + e.msg }

// JSONError is what -o json prints on stdout for a command that fails:
// the API's error shape, {"error":{"code","message",…}}. The exit status
// says it failed.
type JSONError struct {
	Error JSONErrorBody `json:"error"`
}

// JSONErrorBody is the body of a JSONError.
type JSONErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending input of an invalid request.
	Field string `json:"field,omitempty"`
	// RunID is the refused run of a refused trigger.
	RunID string `json:"run_id,omitempty"`
	// HTTPStatus is the status of the host's answer (absent when the host
	// did not answer or the CLI refused the command itself).
	HTTPStatus int `json:"http_status,omitempty"`
	// Addr is the API address tried when the host could not be reached.
	Addr string `json:"addr,omitempty"`
	// ExitStatus is the process's exit status (never 0 for a failure).
	ExitStatus int `json:"exit_status,omitempty"`
}

func (e *cmdError) jsonBody() JSONError {
	msg := e.detail
	if msg == "" {
		msg = e.msg
	}
	return JSONError{Error: JSONErrorBody{Code: e.code, Message: msg, Field: e.field, RunID: e.runID,
		HTTPStatus: e.httpStatus, Addr: e.addr, ExitStatus: e.exit}}
}

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
		detail := ae.Message
		if msg == "" {
			msg = fmt.Sprintf("HTTP status %d", ae.Status)
			detail = msg
		}
		return &cmdError{code: ae.Code, msg: msg, exit: ExitError, detail: detail, field: ae.Field, runID: ae.RunID, httpStatus: ae.Status}
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

// classify is classify with what only the app knows: where the token and
// the address came from, so a refused token or an unreachable host says
// what to fix.
func (a *app) classify(err error) *cmdError {
	ce := classify(err)
	if ce.code == CodeUnavailable && ce.addr == "" && !errors.Is(err, context.Canceled) {
		ce.msg = a.unreachable(err)
		ce.addr = a.setting("addr", EnvAddr)
	}
	if ce.code == codeUnauthorized && a.tokenSource != "" && !strings.Contains(ce.msg, "token from") {
		ce.msg = fmt.Sprintf("the host at %s refused the operator token from %s: give the token of that host's data dir "+
			"(--token, %s, or --data-dir/%s pointing at its data dir)", a.setting("addr", EnvAddr), a.tokenSource, EnvToken, EnvDataDir)
		ce.detail = ce.msg
	}
	return ce
}

// unreachable says which address was tried, where it came from, why the
// host could not be reached and what to do. It never repeats the token.
func (a *app) unreachable(err error) string {
	addr := a.setting("addr", EnvAddr)
	if errors.Is(err, client.ErrUntrusted) || errors.Is(err, client.ErrHTTPSOnly) {
		// The host is there; the TLS error says what to change.
		msg := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		return fmt.Sprintf("cannot talk to the connhost API at %s (%s): %s", addr, a.addrSource(), msg)
	}
	var why string
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.As(err, &dnsErr):
		why = "unknown host " + dnsErr.Name
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		why = "timed out"
	default:
		why = cause(err)
	}
	return fmt.Sprintf("cannot reach the connhost API at %s (%s): %s; `connhost serve` must be running there "+
		"(or point --addr/%s at the address it serves on)", addr, a.addrSource(), why, EnvAddr)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cause is the innermost message of a transport error, without the
// client's and net/http's prefixes (which repeat the method and URL).
func cause(err error) string {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			// fmt.Errorf("%w: %w"): the last is the transport error.
			errs := u.Unwrap()
			if len(errs) == 0 {
				return err.Error()
			}
			err = errs[len(errs)-1]
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err.Error()
			}
			err = next
		default:
			return err.Error()
		}
	}
}

// pkgPrefix is a Go package's prefix at the start of an error message or
// of one of its wrapped parts ("server: ", "keysets: "): the call chain,
// not something the user reads.
var pkgPrefix = regexp.MustCompile(`(^|: |; )(server|keysets|sqlite|sqlstore|postgres|store|catalog|launch|contain|cluster): `)

// sentence is err's message as the user reads it: one sentence, without
// the package prefixes its wrapping left in the middle. The error itself
// keeps them (errors.Is still matches its sentinels); only what is
// printed drops them.
func sentence(err error) string {
	msg := err.Error()
	for {
		next := pkgPrefix.ReplaceAllString(msg, "$1")
		if next == msg {
			return msg
		}
		msg = next
	}
}

var _ error = (*cmdError)(nil)
