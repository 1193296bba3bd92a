package dispatch

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
)

// recordLoop writes buffered ticks: it waits for the first, gathers for
// FlushWindow, and writes what it has in one transaction per BatchSize.
func (d *Dispatcher) recordLoop(ctx context.Context) {
	defer d.loops.Done()
	backoff := 10 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.tickSig:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.FlushWindow):
		}
		if d.flushTicks(ctx) {
			backoff = 10 * time.Millisecond
			continue
		}
		// The store failed: keep the ticks, try again later.
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
		signal(d.tickSig)
	}
}

// flushTicks writes the buffer; it reports false when the store failed,
// leaving the unwritten ticks buffered.
func (d *Dispatcher) flushTicks(ctx context.Context) bool {
	d.tmu.Lock()
	if len(d.ticks) == 0 {
		d.tmu.Unlock()
		return true
	}
	batch := make([]store.Tick, 0, len(d.ticks))
	for _, q := range d.ticks {
		for _, t := range q {
			batch = append(batch, store.Tick{ConnectionID: t.ConnectionID, ScheduleGen: t.Gen, DueAt: t.DueAt, RunAt: t.RunAt})
		}
	}
	clear(d.ticks)
	d.tmu.Unlock()
	// Earliest run_at first: with a burst to write (10,000 connections
	// due at one instant, jittered over a minute) the first batches hold
	// what workers can start first. A connection's ticks keep their order
	// (run_at is due plus a fixed offset).
	slices.SortFunc(batch, func(a, b store.Tick) int {
		return cmp.Or(a.RunAt.Compare(b.RunAt), strings.Compare(a.ConnectionID, b.ConnectionID))
	})

	for len(batch) > 0 {
		n := min(len(batch), d.cfg.BatchSize)
		out, err := d.cfg.Store.RecordTicks(ctx, batch[:n])
		if err != nil {
			d.cfg.Logger.Error("record due occurrences", "ticks", len(batch), "error", err)
			d.requeue(batch)
			return false
		}
		recorded := 0
		for _, o := range out {
			d.cfg.Observer.Ticks(o, 1)
			switch o {
			case store.TickRecorded:
				recorded++
			case store.TickCoalesced:
				d.cfg.Observer.Coalesced(1)
			}
		}
		if recorded > 0 {
			// Claim what this batch made due while the next is written.
			d.Wake()
			d.notifyOthers()
		}
		batch = batch[n:]
	}
	return true
}

// requeue puts unwritten ticks back ahead of those that arrived
// meanwhile, within MaxBuffered per connection.
func (d *Dispatcher) requeue(batch []store.Tick) {
	d.tmu.Lock()
	back := map[string][]schedule.Tick{}
	for _, t := range batch {
		back[t.ConnectionID] = append(back[t.ConnectionID],
			schedule.Tick{ConnectionID: t.ConnectionID, Gen: t.ScheduleGen, DueAt: t.DueAt, RunAt: t.RunAt})
	}
	dropped := 0
	for conn, q := range back {
		q = append(q, d.ticks[conn]...)
		if len(q) > MaxBuffered {
			dropped += len(q) - MaxBuffered
			q = q[len(q)-MaxBuffered:]
		}
		d.ticks[conn] = q
	}
	d.tmu.Unlock()
	if dropped > 0 {
		d.cfg.Observer.Coalesced(dropped)
	}
}

// claimLoop claims due occurrences for free workers (and Prefetch more).
func (d *Dispatcher) claimLoop(ctx context.Context) {
	defer d.loops.Done()
	var last time.Time
	// due says whether work may be due: after a wake-up, a timer, or a
	// claim that filled every free worker (a backlog). A worker freeing
	// up claims again only then, so a quiet queue costs no claims.
	due := true
	for {
		if d.isStopping() {
			return
		}
		free := d.room()
		if free > 0 && due {
			if wait := d.cfg.ClaimCooldown - time.Since(last); wait > 0 {
				time.Sleep(wait)
			}
			last = time.Now()
			free = d.room()
			got, err := d.cfg.Store.ClaimDue(ctx, d.cfg.HostID, d.cfg.Clock.Now(), free)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Error("claim due occurrences", "error", err)
			}
			d.take(got)
			due = err != nil || len(got) == free
			if due && err == nil {
				continue // a backlog: claim again once a worker frees
			}
		}
		timer := d.nextWake(ctx, free > 0)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.stopClaim:
			timer.Stop()
			return
		case <-d.wake:
			due = true
		case <-d.slotFree:
		case <-timer.Chan():
			due = true
		}
		timer.Stop()
	}
}

// room is how many more occurrences this host takes now: its free
// workers, and room left in the prefetch.
func (d *Dispatcher) room() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Workers + d.cfg.Prefetch - d.busy - len(d.ready)
}

// nextWake returns a timer for the earliest pending run_at, at most
// PollInterval away. With no free worker only a freed one matters.
func (d *Dispatcher) nextWake(ctx context.Context, free bool) interface {
	Chan() <-chan time.Time
	Stop() bool
} {
	wait := d.cfg.PollInterval
	if free {
		if next, ok, err := d.cfg.Store.NextRunAt(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(d.cfg.Clock.Now()), 0))
		}
	}
	return d.cfg.Clock.NewTimer(wait)
}

func (d *Dispatcher) isStopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

// take queues claimed occurrences and starts workers for as many as the
// pool has room for.
func (d *Dispatcher) take(claimed []store.Occurrence) {
	if len(claimed) == 0 {
		return
	}
	d.mu.Lock()
	// Manual runs go ahead of what was claimed before them.
	var manual, other []store.Occurrence
	for _, o := range claimed {
		if o.Trigger == store.TriggerManual {
			manual = append(manual, o)
		} else {
			other = append(other, o)
		}
	}
	d.ready = append(append(manual, d.ready...), other...)
	var start []store.Occurrence
	for d.busy < d.cfg.Workers && len(d.ready) > 0 {
		start = append(start, d.ready[0])
		d.ready = d.ready[1:]
		d.busy++
		d.workers.Add(1)
	}
	busy := d.busy
	d.mu.Unlock()
	d.cfg.Observer.WorkersBusy(busy)
	for _, o := range start {
		go d.worker(o)
	}
}

// worker runs o, then whatever else is claimed and waiting.
func (d *Dispatcher) worker(o store.Occurrence) {
	defer d.workers.Done()
	for {
		d.work(o)
		d.mu.Lock()
		if len(d.ready) == 0 || d.stopping {
			d.busy--
			busy := d.busy
			d.mu.Unlock()
			d.cfg.Observer.WorkersBusy(busy)
			signal(d.slotFree)
			return
		}
		o = d.ready[0]
		d.ready = d.ready[1:]
		d.mu.Unlock()
		signal(d.slotFree) // room in the prefetch
	}
}

// work runs the occurrence and queues its completion.
func (d *Dispatcher) work(o store.Occurrence) {
	if d.isStopping() {
		d.release(o)
		return
	}
	lag := max(d.cfg.Clock.Now().Sub(o.RunAt), 0)
	d.cfg.Observer.ObserveDispatchLag(string(o.Trigger), lag)
	req := Request{ConnectionID: o.ConnectionID, Trigger: o.Trigger, Attempt: o.Attempt, RetryOf: o.RetryOf,
		RunID: o.RunID, OccurrenceID: o.ID}
	if o.Trigger != store.TriggerManual {
		req.ScheduledFor = o.DueAt
	}
	out := d.cfg.Launcher.Run(d.runCtx, req)
	c := store.Completion{ConnectionID: o.ConnectionID, OccurrenceID: o.ID, Holder: d.cfg.HostID}
	switch {
	case out.RunID == "":
		// Nothing ran: the claim was lost (the schedule moved, the
		// connection went, or a survivor reaped this host). Removing
		// the occurrence is all there is to do; a lost claim makes it a
		// no-op.
	case out.Code == failure.HostShutdown:
		// Interrupted or refused by this host's shutdown: hand it back,
		// due now.
		c.Retry = &store.Retry{RunAt: d.cfg.Clock.Now(), Attempt: o.Attempt + 1, RetryOf: out.RunID}
	case out.Status == store.RunFailed && out.Retryable && o.Attempt < d.cfg.Retry.MaxAttempts:
		at := d.cfg.Clock.Now().Add(d.cfg.Retry.Backoff(o.Attempt+1, d.cfg.Rand))
		c.Retry = &store.Retry{RunAt: at, Attempt: o.Attempt + 1, RetryOf: out.RunID}
	}
	d.cmu.Lock()
	d.comps = append(d.comps, c)
	d.cmu.Unlock()
	signal(d.compSg)
}

// release returns an occurrence this host will not start.
func (d *Dispatcher) release(o store.Occurrence) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.cfg.Store.ReleaseOccurrence(ctx, o.ConnectionID, o.ID, d.cfg.HostID)
	if err != nil && !errors.Is(err, store.ErrOccurrenceLost) {
		d.cfg.Logger.Error("hand back an occurrence", "connection_id", o.ConnectionID, "error", err)
	}
}

// completeLoop writes queued completions in batches.
func (d *Dispatcher) completeLoop(ctx context.Context) {
	defer d.loops.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.compSg:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.CompleteWindow):
		}
		if !d.flushCompletions(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			signal(d.compSg)
		}
	}
}

// flushCompletions writes queued completions; false when the store
// failed (they stay queued).
func (d *Dispatcher) flushCompletions(ctx context.Context) bool {
	d.cmu.Lock()
	batch := d.comps
	d.comps = nil
	d.cmu.Unlock()
	retried := false
	for len(batch) > 0 {
		n := min(len(batch), d.cfg.BatchSize)
		out, err := d.cfg.Store.CompleteOccurrences(ctx, batch[:n])
		if err != nil {
			d.cfg.Logger.Error("complete occurrences", "completions", len(batch), "error", err)
			d.cmu.Lock()
			d.comps = append(batch, d.comps...)
			d.cmu.Unlock()
			return false
		}
		for i, o := range out {
			if o == store.CompletionRetried {
				retried = true
				r := batch[i].Retry
				d.cfg.Logger.Info("retry queued", "connection_id", batch[i].ConnectionID, "retry_of", r.RetryOf,
					"attempt", r.Attempt, "at", r.RunAt.UTC().Format(time.RFC3339))
			}
		}
		batch = batch[n:]
	}
	if retried {
		d.Wake()
		d.notifyOthers()
	}
	return true
}
