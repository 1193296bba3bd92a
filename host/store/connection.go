package store

import (
	"encoding/json"
	"time"
)

// ConnectionState is a connection's lifecycle state.
type ConnectionState string

// Connection states. Pause is active→paused, resume paused→active, revoke
// any→revoked; a revoked connection stays revoked until deleted.
const (
	ConnectionActive  ConnectionState = "active"
	ConnectionPaused  ConnectionState = "paused"
	ConnectionRevoked ConnectionState = "revoked"
)

// Valid reports whether s is a known state.
func (s ConnectionState) Valid() bool {
	switch s {
	case ConnectionActive, ConnectionPaused, ConnectionRevoked:
		return true
	}
	return false
}

// ReachableFrom lists the states from which a connection may move to s.
// Moving to the state a connection is in (pausing a paused one, resuming
// an active one, revoking a revoked one) is an allowed no-op.
func (s ConnectionState) ReachableFrom() []ConnectionState {
	switch s {
	case ConnectionPaused:
		return []ConnectionState{ConnectionActive, ConnectionPaused}
	case ConnectionActive:
		return []ConnectionState{ConnectionPaused, ConnectionActive}
	case ConnectionRevoked:
		return []ConnectionState{ConnectionActive, ConnectionPaused, ConnectionRevoked}
	}
	return nil
}

// Schedule is a connection's schedule. The store keeps the spec as text;
// the scheduler parses it.
type Schedule struct {
	Spec string // cron spec; "" means no own schedule (the connector's default may apply)
	// Jitter is optional: each occurrence runs a stable per-connection
	// offset in [0, Jitter) after its due instant. With no Spec it
	// spreads the connector's default schedule (the control service
	// checks that there is one).
	Jitter time.Duration
}

func (s Schedule) validate() error {
	if err := checkText("schedule.spec", s.Spec, false); err != nil {
		return err
	}
	if s.Jitter < 0 {
		return invalid("schedule.jitter", "negative")
	}
	return nil
}

// Connection is one configured instance of a connector.
type Connection struct {
	ID           string
	ConnectorKey string
	Label        string
	Config       json.RawMessage // JSON object, never secrets
	Schedule     Schedule
	State        ConnectionState
	CreatedAt    time.Time
	UpdatedAt    time.Time

	// ScheduleGen counts the changes that move the connection's schedule:
	// a new spec or jitter, pause, resume, revoke. Each change removes the
	// connection's pending scheduled occurrences, and a tick recorded
	// under an older generation is stale, so nothing due under an old
	// schedule starts after the change.
	ScheduleGen int64
	// LastDueAt is the latest schedule instant recorded for the current
	// generation (zero before the first).
	LastDueAt time.Time
	// CoalescedTicks counts schedule ticks that found an occurrence of
	// the connection still pending or running and were dropped;
	// LastCoalescedAt is the instant of the latest.
	CoalescedTicks  int64
	LastCoalescedAt time.Time

	// Streak is the latest counted run's outcome and the failures in a
	// row behind it (see Streak).
	Streak Streak
	// Hold is set while the connection's schedule is held after a launch
	// only a person can fix (see Hold).
	Hold Hold
	// BackoffUntil, when set, is the instant before which no schedule
	// instant of the connection runs: repeated retryable failures back
	// off. A success or an operator change clears it.
	BackoffUntil time.Time
}

// NewConnection is the input of CreateConnection. The connector must be in
// the catalog; the connection starts active.
type NewConnection struct {
	ConnectorKey string
	Label        string
	Config       json.RawMessage // JSON object; nil stores {}
	Schedule     Schedule
}

// Validate checks the fields.
func (n NewConnection) Validate() error {
	if err := checkText("connector_key", n.ConnectorKey, true); err != nil {
		return err
	}
	if err := checkText("label", n.Label, false); err != nil {
		return err
	}
	if err := checkJSONObject("config", n.Config, true); err != nil {
		return err
	}
	return n.Schedule.validate()
}

// ConnectionPatch changes some fields of a connection; nil fields are left
// unchanged. Schedule replaces spec and jitter together.
type ConnectionPatch struct {
	Label    *string
	Config   json.RawMessage // nil: unchanged; otherwise a JSON object
	Schedule *Schedule
}

// Validate checks the fields that are set.
func (p ConnectionPatch) Validate() error {
	if p.Label != nil {
		if err := checkText("label", *p.Label, false); err != nil {
			return err
		}
	}
	if p.Config != nil {
		if err := checkJSONObject("config", p.Config, false); err != nil {
			return err
		}
	}
	if p.Schedule != nil {
		return p.Schedule.validate()
	}
	return nil
}

// ConnectionFilter narrows ListConnections; zero fields match everything.
type ConnectionFilter struct {
	ConnectorKey string
	State        ConnectionState
}

// ConnectionPageFilter narrows and pages ListConnectionPage.
type ConnectionPageFilter struct {
	ConnectionFilter
	Cursor string // ConnectionPage.Next of the previous page
	Limit  int    // see PageLimit
}

// ConnectionPage is one page of connections, oldest first. Next is "" on
// the last page.
type ConnectionPage struct {
	Connections []Connection
	Next        string
}

// ConnectionDeletion reports what DeleteConnection removed, for the audit
// event the caller writes.
type ConnectionDeletion struct {
	Connection Connection // the row as it was
	Records    int64      // records removed
	Checkpoint bool       // a checkpoint was removed
	Credential bool       // a credential row (any state) was removed
}
