package store

import (
	"fmt"
	"time"
)

// OccurrenceState is where an occurrence is in the dispatch queue.
type OccurrenceState string

// Occurrence states. An occurrence is pending until a host's worker claims
// it; it leaves the queue when its run ends (or turns into the pending
// retry of that run).
const (
	OccurrencePending OccurrenceState = "pending"
	OccurrenceClaimed OccurrenceState = "claimed"
)

// Occurrence is one due execution of a connection in the dispatch queue:
// a schedule instant that fell due, a retry of a failed run, or a manual
// trigger. A connection has at most one occurrence at a time, pending or
// claimed; a tick that finds one coalesces into it.
type Occurrence struct {
	ID           string
	ConnectionID string
	Trigger      RunTrigger
	// DueAt is the instant the occurrence is for: the schedule's instant
	// (the run's scheduled_for), the retry's backoff instant, or when a
	// manual run was triggered.
	DueAt time.Time
	// RunAt is when it may start: DueAt shifted by the connection's jitter
	// offset. No worker claims it earlier.
	RunAt time.Time
	// ScheduleGen is the connection's schedule generation the occurrence
	// was recorded under (see Connection.ScheduleGen).
	ScheduleGen int64
	Attempt     int
	RetryOf     string
	// RunID is the run row, once there is one: a manual run's from the
	// moment it is queued, a scheduled or retry run's once a worker
	// starts it.
	RunID     string
	State     OccurrenceState
	ClaimedBy string    // host id, "" while pending
	ClaimedAt time.Time // zero while pending
	CreatedAt time.Time
}

// Tick is a schedule instant that fell due on some host: the input of
// RecordTicks.
type Tick struct {
	ConnectionID string
	// ScheduleGen is the generation of the schedule the instant was
	// computed from; a tick of an older generation is stale.
	ScheduleGen int64
	DueAt       time.Time
	RunAt       time.Time
	// ClaimBy, when set, records the occurrence claimed by that host
	// rather than pending: the recorder's host starts it without a claim.
	// A recorder sets it only for a tick it has a worker for now.
	ClaimBy string
	// Dropped counts earlier ticks of the connection the recorder dropped
	// (its buffer for the connection was full): when this tick is recorded
	// or coalesces, they count as coalesced on the connection too.
	Dropped int
}

// Validate checks the fields.
func (t Tick) Validate() error {
	if err := checkText("connection_id", t.ConnectionID, true); err != nil {
		return err
	}
	if err := checkText("claim_by", t.ClaimBy, false); err != nil {
		return err
	}
	switch {
	case t.DueAt.IsZero():
		return invalid("due_at", "required")
	case t.RunAt.Before(t.DueAt):
		return invalid("run_at", "before due_at")
	case t.ScheduleGen < 0:
		return invalid("schedule_gen", "negative")
	case t.Dropped < 0:
		return invalid("dropped", "negative")
	}
	return nil
}

// TickOutcome is what RecordTicks did with one tick.
type TickOutcome string

// Tick outcomes.
const (
	// TickRecorded: an occurrence now exists for the tick: pending, or
	// claimed by the tick's ClaimBy.
	TickRecorded TickOutcome = "recorded"
	// TickCoalesced: the connection already had an occurrence pending or
	// running; the tick is counted on the connection
	// (Connection.CoalescedTicks) and dropped.
	TickCoalesced TickOutcome = "coalesced"
	// TickDuplicate: this instant, or a later one, was recorded already —
	// by this host or another whose clock runs ahead.
	TickDuplicate TickOutcome = "duplicate"
	// TickStale: the connection is gone or not active, or its schedule
	// changed after the tick's generation.
	TickStale TickOutcome = "stale"
	// TickHeld: the connection's schedule is held (Connection.Hold), or
	// the instant falls before its Connection.BackoffUntil.
	TickHeld TickOutcome = "held"
)

// ManualRun is the input of EnqueueManual. The queued run's host_id stays
// empty until a host claims it.
type ManualRun struct {
	ConnectionID string
}

// Validate checks the fields.
func (m ManualRun) Validate() error {
	return checkText("connection_id", m.ConnectionID, true)
}

// Completion is the input of CompleteOccurrence.
type Completion struct {
	ConnectionID string
	OccurrenceID string
	// Holder is the host whose worker claimed the occurrence.
	Holder string
	// Retry, when set, turns the occurrence into the pending retry of its
	// run instead of removing it — if the connection is still active on
	// the same schedule generation.
	Retry *Retry
}

// CompletionOutcome is what CompleteOccurrences did with one completion.
type CompletionOutcome string

// Completion outcomes.
const (
	CompletionDone    CompletionOutcome = "done"    // removed from the queue
	CompletionRetried CompletionOutcome = "retried" // now the pending retry
	CompletionLost    CompletionOutcome = "lost"    // the holder no longer held it
)

// Retry is the next attempt of a failed run.
type Retry struct {
	RunAt   time.Time
	Attempt int
	RetryOf string
}

// OccurrenceFilter narrows ListOccurrences; zero fields match everything.
type OccurrenceFilter struct {
	ConnectionID string
	State        OccurrenceState
	ClaimedBy    string
}

// QueuedError reports a manual trigger refused because the connection's
// occurrence slot is taken by a run that has not ended: queued, or
// running. It carries failure.RunActive (see RunBusy).
type QueuedError struct {
	ConnectionID string
	// RunID is the run that holds the slot ("" when a worker claimed a
	// scheduled occurrence and has not created its run yet).
	RunID string
	// State is the occupying occurrence's state.
	State OccurrenceState
}

func (e *QueuedError) Error() string {
	what := "an active run"
	if e.State == OccurrencePending {
		what = "a queued run"
	}
	if e.RunID == "" {
		return fmt.Sprintf("connection %s already has %s starting", e.ConnectionID, what)
	}
	return fmt.Sprintf("connection %s already has %s (run %s)", e.ConnectionID, what, e.RunID)
}

// Unwrap returns ErrLeaseHeld, the sentinel of run_active.
func (e *QueuedError) Unwrap() error { return ErrLeaseHeld }
