package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/internal/runops"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/configschema"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
)

// Error is an API error with its HTTP status: what a handler returns for
// input it rejects itself (a bad query parameter, a body that does not
// decode). Errors from the host's packages are mapped by Classify.
type Error struct {
	Status int
	Body   apitypes.ErrorBody
}

func (e *Error) Error() string {
	if e.Body.Field != "" {
		return fmt.Sprintf("api: %d %s: %s (field %s)", e.Status, e.Body.Code, e.Body.Message, e.Body.Field)
	}
	return fmt.Sprintf("api: %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

func errBody(code, message, field string) apitypes.ErrorBody {
	return apitypes.ErrorBody{Code: code, Message: message, Field: field}
}

// invalid returns a 400 invalid_request naming field.
func invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Body: errBody(apitypes.CodeInvalidRequest, fmt.Sprintf(format, args...), field)}
}

// refusalStatus is the HTTP status of each failure code the API can meet.
// Launch refusals are 409: the request is fine, the connection's state
// (revoked, its credential unavailable, a run already active) forbids it.
var refusalStatus = map[failure.Code]int{
	failure.ConnectionNotFound:      http.StatusNotFound,
	failure.ConnectorNotFound:       http.StatusNotFound,
	failure.KeyNotFound:             http.StatusNotFound,
	failure.RunActive:               http.StatusConflict,
	failure.ConnectionRevoked:       http.StatusConflict,
	failure.ConnectionPaused:        http.StatusConflict,
	failure.StaticSecretUnavailable: http.StatusConflict,
	failure.CredentialsRequired:     http.StatusConflict,
	failure.CredentialRejected:      http.StatusConflict,
	failure.PluginChecksumMismatch:  http.StatusConflict,
	failure.HostShutdown:            http.StatusServiceUnavailable,
	failure.StoreCorrupt:            http.StatusInternalServerError,
}

// Classify maps an error to its HTTP status and typed body. Messages come
// from errors whose text is secret-free by contract (failure messages,
// validation reasons naming fields); anything unrecognised is a 500 with
// a generic message, its text only logged.
func Classify(err error) (int, apitypes.ErrorBody) {
	var (
		ae  *Error
		fe  *failure.Error
		ci  *control.InvalidError
		si  *store.InvalidError
		ve  *broker.ValueError
		ee  *runops.EndedError
		mbe *http.MaxBytesError
		cse *configschema.Error
	)
	switch {
	case errors.As(err, &ae):
		return ae.Status, ae.Body
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errBody(apitypes.CodePayloadTooLarge,
			fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), "")
	case errors.As(err, &fe) && fe.Code != failure.Internal:
		status, ok := refusalStatus[fe.Code]
		if !ok {
			status = http.StatusConflict
		}
		return status, errBody(string(fe.Code), fe.Message, "")
	case errors.As(err, &ci):
		return http.StatusBadRequest, errBody(apitypes.CodeInvalidRequest, ci.Field+": "+ci.Reason, apiField(ci.Field))
	case errors.As(err, &cse):
		return http.StatusBadRequest, errBody(apitypes.CodeInvalidConfig, cse.Error(), "/config"+cse.Pointer)
	case errors.As(err, &si) && si.Field == "cursor":
		return http.StatusBadRequest, errBody(apitypes.CodeInvalidCursor, si.Field+": "+si.Reason, "cursor")
	case errors.As(err, &si):
		return http.StatusBadRequest, errBody(apitypes.CodeInvalidRequest, si.Field+": "+si.Reason, apiField(si.Field))
	case errors.As(err, &ve):
		field := "values"
		if ve.Name != "" {
			field += "." + ve.Name
		}
		code := apitypes.CodeInvalidRequest
		if errors.Is(ve, broker.ErrValueTooShort) {
			code = apitypes.CodeSecretTooShort
		}
		return http.StatusBadRequest, errBody(code, trimPkg(ve.Error()), field)
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, errBody(apitypes.CodeInvalidRequest, trimPkg(err.Error()), "")
	case errors.Is(err, store.ErrInvalidTransition), errors.Is(err, store.ErrCredentialState):
		return http.StatusConflict, errBody(apitypes.CodeConflict, trimPkg(err.Error()), "")
	case errors.Is(err, store.ErrCredentialNotFound):
		return http.StatusNotFound, errBody(apitypes.CodeCredentialNotFound, "the connection has no stored credential", "")
	case errors.Is(err, store.ErrRunNotFound):
		return http.StatusNotFound, errBody(apitypes.CodeRunNotFound, store.RunNotFoundMessage(err), "")
	case errors.Is(err, store.ErrConnectionNotFound):
		return http.StatusNotFound, errBody(string(failure.ConnectionNotFound), "connection not found", "")
	case errors.Is(err, store.ErrConnectorNotFound):
		return http.StatusNotFound, errBody(string(failure.ConnectorNotFound), "connector not found", "")
	case errors.Is(err, store.ErrLeaseHeld):
		return http.StatusConflict, errBody(string(failure.RunActive), "the connection has an active run", "")
	case errors.As(err, &ee):
		return http.StatusConflict, errBody(apitypes.CodeConflict, ee.Error(), "")
	case errors.Is(err, runops.ErrNotOnThisHost), errors.Is(err, runner.ErrNotActive):
		return http.StatusConflict, errBody(apitypes.CodeConflict, "the run is not running on this host", "")
	case errors.Is(err, broker.ErrNoKeyset):
		return http.StatusConflict, errBody(apitypes.CodeConflict, "no keyset is loaded: credentials cannot be stored", "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, errBody(apitypes.CodeUnavailable, "request cancelled or timed out", "")
	}
	return http.StatusInternalServerError, errBody(apitypes.CodeInternal, "internal error", "")
}

// apiField maps a store or control field name to the API's.
func apiField(f string) string {
	switch f {
	case "schedule.spec":
		return "schedule"
	case "schedule.jitter":
		return "jitter"
	}
	return f
}

// trimPkg drops a Go package prefix ("store: ") from a message.
func trimPkg(msg string) string {
	for _, p := range []string{"store: ", "broker: ", "control: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// fail writes err as a typed error and logs what is not the caller's
// fault.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := Classify(err)
	switch {
	case status >= 500 && r.Context().Err() != nil:
		// The caller went away (a browser left the page): not a fault.
		a.log.Debug("request abandoned by the caller", "method", r.Method, "path", r.URL.Path, "error", err)
	case status >= 500:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	writeError(w, status, body)
}

// refused writes a refused run trigger: the typed refusal plus the id of
// the refused run row.
func (a *API) refused(w http.ResponseWriter, r *http.Request, runID string, err error) {
	status, body := Classify(err)
	if runID != "" {
		body.RunID = runID
		body.Message = fmt.Sprintf("%s; refused as run %s", body.Message, runID)
	}
	if status >= 500 {
		a.log.Error("run trigger failed", "path", r.URL.Path, "error", err)
	}
	writeError(w, status, body)
}

func writeError(w http.ResponseWriter, status int, body apitypes.ErrorBody) {
	writeJSON(w, status, apitypes.Error{Error: body})
}
