// Package runops holds the run operations the HTTP API and the gRPC admin
// service share, so both surfaces cancel and follow a run the same way:
//
//   - Cancel asks the runner to cancel a run it is running and waits for
//     the run's final row;
//   - Follow streams a run's live events until its end, reading the final
//     row from the store so the last update always agrees with GET.
package runops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/store"
)

// Errors.
var (
	// ErrRunEnded: the run is already terminal; there is nothing to
	// cancel. Wrapped by *EndedError.
	ErrRunEnded = errors.New("runops: run already ended")
	// ErrNotOnThisHost: the run is queued or running, but neither this
	// host nor (asked over the bus) another host runs it.
	ErrNotOnThisHost = errors.New("runops: run is not running on this host")
)

// EndedError reports a cancel of a terminal run.
type EndedError struct {
	RunID  string
	Status store.RunStatus
}

func (e *EndedError) Error() string {
	return fmt.Sprintf("run %s already ended with status %s", e.RunID, e.Status)
}

// Unwrap returns ErrRunEnded.
func (e *EndedError) Unwrap() error { return ErrRunEnded }

// Runs is the store side of a run.
type Runs interface {
	GetRun(ctx context.Context, id string) (store.Run, error)
}

// Queue cancels a run still waiting in the dispatch queue.
type Queue interface {
	CancelQueuedRun(ctx context.Context, runID string, res store.RunResult) (store.Run, error)
}

// Runner is the runner side: cancel a live run here or on the host that
// runs it, publish the end of a run nobody ran, and the event hub.
type Runner interface {
	Cancel(runID string) error
	CancelElsewhere(ctx context.Context, runID string) error
	Ended(run store.Run)
	Events() *runevents.Hub
}

// cancelled is the result of an operator's cancel.
var cancelled = store.RunResult{Status: store.RunCancelled, FailureCode: failure.Cancelled, FailureMessage: "cancelled by operator"}

// Cancel cancels the run and returns its final row, whichever host runs
// it: a run still queued is cancelled in the queue, a run on this host by
// its runner, and a run on another host by that host (asked over the
// bus). It waits for the run to end (the child killed, records committed,
// the lease released) until ctx is done, then returns the row as it is. A
// terminal run returns an *EndedError, a run no host runs
// ErrNotOnThisHost, an unknown run the store's ErrRunNotFound.
func Cancel(ctx context.Context, st Runs, q Queue, r Runner, runID string) (store.Run, error) {
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return store.Run{}, err
	}
	if run.Status.Terminal() {
		return run, &EndedError{RunID: run.ID, Status: run.Status}
	}
	// Subscribe before cancelling, so the end event cannot slip past.
	ch, unsubscribe := r.Events().Subscribe(runID)
	defer unsubscribe()
	if fin, err := cancel(ctx, st, q, r, run); err != nil || fin != nil {
		if fin != nil {
			return *fin, err
		}
		return run, err
	}
	for {
		select {
		case ev, ok := <-ch:
			if ok && ev.Kind != runevents.KindEnd {
				continue
			}
		case <-ctx.Done():
		}
		// The end event is published after the row is final.
		return st.GetRun(context.WithoutCancel(ctx), runID)
	}
}

// startWindow bounds how long cancel waits for a claimed run to show up
// on a host: a worker starts what it claimed within milliseconds.
const startWindow = 5 * time.Second

// cancel cancels run where it is: in the queue, on this host, or on the
// host that runs it. A run a worker claimed but has not started yet is in
// none of those places for a moment: cancel retries until it shows up,
// for at most startWindow. A run cancelled in the queue is final at once:
// cancel returns its row.
func cancel(ctx context.Context, st Runs, q Queue, r Runner, run store.Run) (*store.Run, error) {
	askedOthers := false
	give := time.After(startWindow)
	for {
		if run.Status == store.RunQueued {
			fin, err := q.CancelQueuedRun(ctx, run.ID, cancelled)
			if err == nil {
				r.Ended(fin)
				return &fin, nil
			}
			if !errors.Is(err, store.ErrOccurrenceLost) && !errors.Is(err, store.ErrRunState) {
				return nil, err
			}
			// A worker claimed it meanwhile: cancel it where it runs.
		}
		if r.Cancel(run.ID) == nil {
			return nil, nil
		}
		if !askedOthers && r.CancelElsewhere(ctx, run.ID) == nil {
			// The host that runs it cancels it (and keeps trying while
			// its worker starts it); its end event comes back here.
			return nil, nil
		}
		askedOthers = true
		select {
		case <-ctx.Done():
			return nil, ErrNotOnThisHost
		case <-give:
			return nil, ErrNotOnThisHost
		case <-time.After(20 * time.Millisecond):
		}
		again, err := st.GetRun(ctx, run.ID)
		if err != nil {
			return nil, err
		}
		if again.Status.Terminal() {
			return &again, &EndedError{RunID: again.ID, Status: again.Status}
		}
		run = again
	}
}

// Update is one step of Follow.
type Update struct {
	// Event is the live event (zero for a heartbeat).
	Event runevents.Event
	// Run is the run's row: set on the first update (a status snapshot)
	// and on the end.
	Run *store.Run
	// Heartbeat marks a keep-alive tick without an event.
	Heartbeat bool
}

// End reports whether u is the final update.
func (u Update) End() bool { return u.Event.Kind == runevents.KindEnd }

// DefaultEvery is Follow's default heartbeat and store-poll interval.
const DefaultEvery = 15 * time.Second

// Follow sends runID's updates to emit: first a status snapshot of the
// row, then live events, then an end built from the final row. A run that
// is already terminal gets only the end. Every interval it sends a
// heartbeat and re-reads the row, so a run ended where no event reaches
// this host (another host, a crash recovered at boot) still ends the
// stream. It returns nil after the end, ctx's error when ctx is done, or
// emit's error.
func Follow(ctx context.Context, st Runs, hub *runevents.Hub, runID string, every time.Duration, emit func(Update) error) error {
	if every <= 0 {
		every = DefaultEvery
	}
	if _, err := st.GetRun(ctx, runID); err != nil {
		return err
	}
	ch, unsubscribe := hub.Subscribe(runID)
	defer unsubscribe()
	// Read after subscribing: an end between the two is in the channel.
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return err
	}
	if run.Status.Terminal() {
		return emit(endOf(run))
	}
	if err := emit(Update{Event: statusOf(run), Run: &run}); err != nil {
		return err
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-ch:
			if ok && ev.Kind != runevents.KindEnd {
				if err := emit(Update{Event: ev}); err != nil {
					return err
				}
				continue
			}
			final, err := st.GetRun(context.WithoutCancel(ctx), runID)
			switch {
			case err == nil && final.Status.Terminal():
				return emit(endOf(final))
			case ok:
				// The row could not be read: the event is the end.
				return emit(Update{Event: ev})
			default:
				// The hub closed the channel without an end.
				return ctx.Err()
			}
		case <-tick.C:
			if err := emit(Update{Heartbeat: true}); err != nil {
				return err
			}
			if cur, err := st.GetRun(ctx, runID); err == nil && cur.Status.Terminal() {
				return emit(endOf(cur))
			}
		}
	}
}

func statusOf(run store.Run) runevents.Event {
	return runevents.Event{RunID: run.ID, ConnectionID: run.ConnectionID, Kind: runevents.KindStatus,
		At: time.Now().UTC(), Status: string(run.Status), Records: run.Records}
}

func endOf(run store.Run) Update {
	at := run.EndedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	return Update{Run: &run, Event: runevents.Event{RunID: run.ID, ConnectionID: run.ConnectionID, Kind: runevents.KindEnd,
		At: at, Status: string(run.Status), FailureCode: string(run.FailureCode), Message: run.FailureMessage, Records: run.Records}}
}
