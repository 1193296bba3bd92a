package client

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidAddr is returned by New for an address that is not an
	// http(s) URL or a host:port.
	ErrInvalidAddr = errors.New("client: invalid API address")
	// ErrUnavailable wraps transport failures: the request never got an
	// HTTP response.
	ErrUnavailable = errors.New("client: API unavailable")
	// ErrBadResponse wraps responses that break the API contract (a body
	// that is not the promised JSON, an event stream that is malformed).
	ErrBadResponse = errors.New("client: bad API response")
	// ErrEmptyID is returned, before any request, for an empty id or key
	// argument.
	ErrEmptyID = errors.New("client: empty id")
	// ErrStreamEnded is returned by EventStream.Next when the stream
	// closed before its "end" event (the server shut down, the network
	// dropped). The run may still be going: read it with GetRun.
	ErrStreamEnded = errors.New("client: event stream ended before the run ended")
)

// APIError is a typed API error: the body of a non-2xx response.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the stable error code (apitypes.Code… or a failure code).
	Code string
	// Message is the server's human-readable message.
	Message string
	// Field names the offending input of an invalid_request, if any.
	Field string
	// RunID is the refused run's id when a run trigger is refused: the
	// refusal is a run row (status refused) that can be read.
	RunID string
}

// Error returns "code: message", the format the CLI prints.
func (e *APIError) Error() string {
	switch {
	case e.Message == "":
		return e.Code
	case e.Field != "":
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	default:
		return e.Code + ": " + e.Message
	}
}

// Is matches another *APIError with the same Code, so callers can write
// errors.Is(err, &client.APIError{Code: "run_active"}).
func (e *APIError) Is(target error) bool {
	var t *APIError
	return errors.As(target, &t) && t.Code == e.Code
}

var _ error = (*APIError)(nil)
