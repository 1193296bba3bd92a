package store

import (
	"time"

	"github.com/connhost/connhost/host/failure"
)

// RunTrigger says what started a run.
type RunTrigger string

// Run triggers.
const (
	TriggerScheduled RunTrigger = "scheduled"
	TriggerRetry     RunTrigger = "retry"
	TriggerManual    RunTrigger = "manual"
)

// Valid reports whether t is a known trigger.
func (t RunTrigger) Valid() bool {
	switch t {
	case TriggerScheduled, TriggerRetry, TriggerManual:
		return true
	}
	return false
}

// RunStatus is a run's status.
type RunStatus string

// Run statuses. queued → running → succeeded|failed|cancelled; a run refused
// before spawn goes queued → refused.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunRefused   RunStatus = "refused"
	RunCancelled RunStatus = "cancelled"
)

// Valid reports whether s is a known status.
func (s RunStatus) Valid() bool {
	switch s {
	case RunQueued, RunRunning, RunSucceeded, RunFailed, RunRefused, RunCancelled:
		return true
	}
	return false
}

// Terminal reports whether s is a final status.
func (s RunStatus) Terminal() bool {
	switch s {
	case RunSucceeded, RunFailed, RunRefused, RunCancelled:
		return true
	}
	return false
}

// FinishableFrom lists the statuses a run may finish from into s:
// succeeded needs running, refused needs queued (nothing was spawned),
// failed and cancelled accept either.
func (s RunStatus) FinishableFrom() []RunStatus {
	switch s {
	case RunSucceeded:
		return []RunStatus{RunRunning}
	case RunRefused:
		return []RunStatus{RunQueued}
	case RunFailed, RunCancelled:
		return []RunStatus{RunQueued, RunRunning}
	}
	return nil
}

// Run is one execution (or refused attempt) of a connection.
type Run struct {
	ID             string
	ConnectionID   string
	Trigger        RunTrigger
	Attempt        int    // 1 for the first attempt, +1 per retry
	RetryOf        string // id of the run this retries, "" otherwise
	Status         RunStatus
	FailureCode    failure.Code // "" unless failed, refused or cancelled
	FailureMessage string       // non-secret
	CreatedAt      time.Time
	StartedAt      time.Time // zero until running
	EndedAt        time.Time // zero until terminal
	Records        int64     // records committed by this run
	HostID         string    // host instance that ran it (or refused it)
	// ScheduledFor is the schedule instant of a scheduled run, and the
	// backoff instant of a retry; zero for a manual run.
	ScheduledFor time.Time
	// Provenance is where the child's environment came from, or the
	// resolution that refused the launch; nil for a run that ended before
	// its credential was resolved.
	Provenance *Provenance
}

// NewRun is the input of CreateRun. The run starts queued.
type NewRun struct {
	ConnectionID string
	Trigger      RunTrigger
	Attempt      int // 0 means 1
	RetryOf      string
	HostID       string
	// ScheduledFor is the occurrence's due instant (scheduled and retry
	// runs).
	ScheduledFor time.Time
	// OccurrenceID, when set, names the claimed occurrence the run is
	// for: the run is bound to it in the same transaction, and creating
	// the run fails with ErrOccurrenceLost unless HostID still holds it
	// and, for a scheduled or retry occurrence, the connection's schedule
	// generation is still the one it was recorded under.
	OccurrenceID string
}

// Validate checks the fields.
func (n NewRun) Validate() error {
	if err := checkText("connection_id", n.ConnectionID, true); err != nil {
		return err
	}
	if !n.Trigger.Valid() {
		return invalid("trigger", "unknown trigger %q", n.Trigger)
	}
	if n.Attempt < 0 {
		return invalid("attempt", "negative")
	}
	if (n.Trigger == TriggerRetry) != (n.RetryOf != "") {
		return invalid("retry_of", "must be set exactly for retry runs")
	}
	if err := checkText("retry_of", n.RetryOf, false); err != nil {
		return err
	}
	if err := checkText("occurrence_id", n.OccurrenceID, false); err != nil {
		return err
	}
	if n.OccurrenceID != "" && n.HostID == "" {
		return invalid("host_id", "required with occurrence_id")
	}
	return checkText("host_id", n.HostID, false)
}

// RunResult is the input of FinishRun.
type RunResult struct {
	Status         RunStatus // terminal
	FailureCode    failure.Code
	FailureMessage string
	// Provenance, when set, is stored with the result (a refused launch's
	// resolution); a run marked running keeps the provenance it started
	// with otherwise.
	Provenance *Provenance
	// Hold, with a failure code in HoldCodes, holds the connection's
	// schedule in the run's transaction (the launch policy decides: a
	// scheduled or retry run).
	Hold bool
	// BackoffUntil, when set, is stored as the connection's BackoffUntil
	// (the launch policy's backoff after repeated retryable failures).
	BackoffUntil time.Time
}

// Validate checks the fields.
func (r RunResult) Validate() error {
	if !r.Status.Terminal() {
		return invalid("status", "%q is not terminal", r.Status)
	}
	if r.Status == RunSucceeded && (r.FailureCode != "" || r.FailureMessage != "") {
		return invalid("failure_code", "set on a succeeded run")
	}
	if r.Status != RunSucceeded && r.FailureCode == "" {
		return invalid("failure_code", "required for status %s", r.Status)
	}
	if r.Hold && !IsHoldCode(r.FailureCode) {
		return invalid("hold", "failure code %q does not hold a schedule", r.FailureCode)
	}
	if err := checkText("failure_code", string(r.FailureCode), false); err != nil {
		return err
	}
	return checkText("failure_message", r.FailureMessage, false)
}

// RunFilter narrows ListRuns; zero fields match everything. Runs come newest
// first.
type RunFilter struct {
	ConnectionID string
	Status       RunStatus
	Trigger      RunTrigger // manual, scheduled or retry
	HostID       string
	Cursor       string // RunPage.Next of the previous page
	Limit        int    // see PageLimit
}

// RunPage is one page of runs. Next is "" on the last page.
type RunPage struct {
	Runs []Run
	Next string
}
