package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connhost/connhost/host/failure"
)

// Sentinel errors. Match them with errors.Is; the ones that map to a
// host/failure code are returned wrapped in a *failure.Error, so
// failure.CodeOf works on them too.
var (
	// ErrInvalid reports an argument that fails validation (see
	// *InvalidError).
	ErrInvalid = errors.New("store: invalid argument")

	// ErrCorrupt: the backend found a damaged page (SQLite's
	// SQLITE_CORRUPT or SQLITE_NOTADB, PostgreSQL's data_corrupted or
	// index_corrupted): no answer is served from it, short or not
	// (failure.StoreCorrupt).
	ErrCorrupt = errors.New("store: the store is corrupt")

	// ErrConnectorNotFound: no catalog row for the connector key
	// (failure.ConnectorNotFound).
	ErrConnectorNotFound = errors.New("store: connector not found")

	// ErrConnectionNotFound: no connection with the id, or it was deleted
	// (failure.ConnectionNotFound).
	ErrConnectionNotFound = errors.New("store: connection not found")

	// ErrCredentialNotFound: the connection exists but never had a
	// credential stored. A deleted credential is not "not found": it is a
	// tombstone in state CredentialDeleted.
	ErrCredentialNotFound = errors.New("store: credential never stored")

	// ErrCredentialState: the operation is not allowed in the credential's
	// current state (see *CredentialStateError).
	ErrCredentialState = errors.New("store: operation not allowed in credential state")

	// ErrCiphertextChanged: ReplaceCiphertext's compare-and-swap lost, the
	// stored ciphertext is no longer the one the caller read.
	ErrCiphertextChanged = errors.New("store: ciphertext changed concurrently")

	// ErrInvalidTransition: the connection state change is not allowed
	// (see *TransitionError).
	ErrInvalidTransition = errors.New("store: invalid connection state transition")

	// ErrRunNotFound: no run with the id (or it belongs to another
	// connection).
	ErrRunNotFound = errors.New("store: run not found")

	// ErrRunState: the operation is not allowed in the run's current status
	// (see *RunStateError).
	ErrRunState = errors.New("store: operation not allowed in run status")

	// ErrLeaseHeld: another run holds the connection's unexpired lease
	// (failure.RunActive; see *LeaseHeldError).
	ErrLeaseHeld = errors.New("store: lease held by another run")

	// ErrLeaseNotHeld: the run does not hold the connection's lease (it was
	// released, reclaimed or taken over after expiry).
	ErrLeaseNotHeld = errors.New("store: lease not held by run")

	// ErrLockHeld: another holder holds the named lock and it has not
	// expired.
	ErrLockHeld = errors.New("store: lock held by another holder")

	// ErrLockNotHeld: the holder does not hold the named lock.
	ErrLockNotHeld = errors.New("store: lock not held")

	// ErrOccurrenceLost: the occurrence is no longer claimed by the
	// caller's host — it ran already, its connection changed, or a
	// survivor reaped the host.
	ErrOccurrenceLost = errors.New("store: occurrence not claimed by this host")

	// ErrHostNotLive: the host row is missing or no longer live (a
	// survivor declared it crashed): its claims and leases are gone.
	ErrHostNotLive = errors.New("store: host not live")
)

// ConnectionNotFound returns the error for a missing connection: it matches
// ErrConnectionNotFound and carries failure.ConnectionNotFound.
func ConnectionNotFound(id string) error {
	return &failure.Error{
		Code:    failure.ConnectionNotFound,
		Message: fmt.Sprintf("connection %q not found", id),
		Err:     ErrConnectionNotFound,
	}
}

// ConnectorNotFound returns the error for a missing catalog row: it matches
// ErrConnectorNotFound and carries failure.ConnectorNotFound.
func ConnectorNotFound(key string) error {
	return &failure.Error{
		Code:    failure.ConnectorNotFound,
		Message: fmt.Sprintf("connector %q not found", key),
		Err:     ErrConnectorNotFound,
	}
}

// RunActive returns the error for a held lease: it matches ErrLeaseHeld,
// unwraps to a *LeaseHeldError carrying the lease, and carries
// failure.RunActive.
func RunActive(held Lease) error {
	e := &LeaseHeldError{Lease: held}
	return &failure.Error{Code: failure.RunActive, Message: e.Error(), Err: e}
}

// Conflict returns e (a *TransitionError, a *CredentialStateError)
// carrying failure.Conflict, so the audit and the API see a typed code;
// errors.Is and errors.As still reach e and its sentinel.
func Conflict(e error) error {
	return &failure.Error{Code: failure.Conflict, Message: strings.TrimPrefix(e.Error(), "store: "), Err: e}
}

// RunBusy returns the error for a manual trigger whose connection already
// has a queued or running run: it matches ErrLeaseHeld, unwraps to e, and
// carries failure.RunActive.
func RunBusy(e *QueuedError) error {
	return &failure.Error{Code: failure.RunActive, Message: e.Error(), Err: e}
}

// RunNotFoundError is ErrRunNotFound for a run id asked for.
type RunNotFoundError struct {
	ID string
}

func (e *RunNotFoundError) Error() string { return fmt.Sprintf("store: run %q not found", e.ID) }

// Unwrap returns ErrRunNotFound.
func (e *RunNotFoundError) Unwrap() error { return ErrRunNotFound }

// RunNotFoundMessage is the operator's message for an ErrRunNotFound:
// it names the run asked for when err says which.
func RunNotFoundMessage(err error) string {
	var e *RunNotFoundError
	if errors.As(err, &e) {
		return fmt.Sprintf("run %q not found", e.ID)
	}
	return "run not found"
}

// LeaseHeldError reports the lease that blocked an operation.
type LeaseHeldError struct {
	Lease Lease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("connection %q is leased by run %q of host %q until %s",
		e.Lease.ConnectionID, e.Lease.RunID, e.Lease.Holder, e.Lease.ExpiresAt.Format(time.RFC3339))
}

// Unwrap returns ErrLeaseHeld.
func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

// TransitionError reports a connection state change that is not allowed.
type TransitionError struct {
	ConnectionID string
	From, To     ConnectionState
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("store: connection %q cannot go from %s to %s", e.ConnectionID, e.From, e.To)
}

// Unwrap returns ErrInvalidTransition.
func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }

// CredentialStateError reports a credential operation refused in the
// credential's current state.
type CredentialStateError struct {
	ConnectionID string
	Op           string // "rotate", "revoke", "delete", "quarantine", "set validity"
	State        CredentialState
}

func (e *CredentialStateError) Error() string {
	return fmt.Sprintf("store: cannot %s the credential of connection %q in state %s", e.Op, e.ConnectionID, e.State)
}

// Unwrap returns ErrCredentialState.
func (e *CredentialStateError) Unwrap() error { return ErrCredentialState }

// RunStateError reports a run operation refused in the run's current status.
type RunStateError struct {
	RunID  string
	Op     string // "mark running", "finish", "lease", "commit"
	Status RunStatus
}

func (e *RunStateError) Error() string {
	return fmt.Sprintf("store: cannot %s run %q in status %s", e.Op, e.RunID, e.Status)
}

// Unwrap returns ErrRunState.
func (e *RunStateError) Unwrap() error { return ErrRunState }

// InvalidError reports an argument that fails validation.
type InvalidError struct {
	Field  string // e.g. "config", "schedule.jitter", "records[3].data"
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("store: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// invalid returns an *InvalidError.
func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
