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
	"github.com/jonboulle/clockwork"
)

// recordLoop writes buffered ticks: it waits for the first (or for a
// backup's delay to pass), gathers for FlushWindow, and writes what is
// ready in one transaction per BatchSize.
func (d *Dispatcher) recordLoop(ctx context.Context) {
	defer d.loops.Done()
	backoff := 10 * time.Millisecond
	for {
		var (
			backup <-chan time.Time
			timer  clockwork.Timer
		)
		if at, ok := d.nextBackup(); ok {
			timer = d.cfg.Clock.NewTimer(max(at.Sub(d.cfg.Clock.Now()), 0))
			backup = timer.Chan()
		}
		select {
		case <-ctx.Done():
		case <-d.tickSig:
		case <-backup:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.FlushWindow):
		}
		if d.flushTicks(ctx, false) {
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

// nextBackup returns when the oldest backup tick is due to be written.
func (d *Dispatcher) nextBackup() (time.Time, bool) {
	d.tmu.Lock()
	defer d.tmu.Unlock()
	if len(d.backups) == 0 {
		return time.Time{}, false
	}
	return d.backups[0].at, true
}

// flushTicks writes the buffered ticks that are due (all of them with all
// set): those of a connection this host is the primary of, and backup
// ticks whose delay has passed. It reports false when the store failed,
// leaving the unwritten ticks buffered. The ticks it can start at once —
// due now, as many as this host has room for — are recorded claimed by
// this host and go straight to its workers.
func (d *Dispatcher) flushTicks(ctx context.Context, all bool) bool {
	now := d.cfg.Clock.Now()
	d.tmu.Lock()
	// The connections with something to write: those with ticks for now,
	// and those whose backup delay ended (all of them, with all).
	conns := d.now
	d.now = map[string]struct{}{}
	n := 0
	for ; n < len(d.backups) && (all || !d.backups[n].at.After(now)); n++ {
		conns[d.backups[n].connectionID] = struct{}{}
	}
	d.backups = d.backups[n:]
	if all {
		for conn := range d.ticks {
			conns[conn] = struct{}{}
		}
	}
	batch := make([]store.Tick, 0, len(conns))
	for conn := range conns {
		q := d.ticks[conn]
		k := 0
		// In order, up to the first tick still held back.
		for ; k < len(q) && (all || !q[k].notBefore.After(now)); k++ {
			t := q[k]
			batch = append(batch, store.Tick{ConnectionID: t.ConnectionID, ScheduleGen: t.Gen, DueAt: t.DueAt, RunAt: t.RunAt,
				Dropped: t.dropped})
		}
		if k == len(q) {
			delete(d.ticks, conn)
		} else {
			d.ticks[conn] = q[k:]
		}
	}
	d.tmu.Unlock()
	if len(batch) == 0 {
		return true
	}
	// Earliest run_at first: with a burst to write (10,000 connections
	// due at one instant, jittered over a minute) the first batches hold
	// what workers can start first. A connection's ticks keep their order
	// (run_at is due plus a fixed offset).
	slices.SortFunc(batch, func(a, b store.Tick) int {
		return cmp.Or(a.RunAt.Compare(b.RunAt), strings.Compare(a.ConnectionID, b.ConnectionID))
	})

	for len(batch) > 0 {
		n := min(len(batch), d.cfg.BatchSize)
		reserved := d.reserve(batch[:n])
		out, claimed, err := d.cfg.Store.RecordTicks(ctx, batch[:n])
		d.unreserve(reserved)
		if err != nil {
			d.cfg.Logger.Error("record due occurrences", "ticks", len(batch), "error", err)
			d.requeue(batch)
			return false
		}
		d.take(claimed)
		recorded, coalesced := 0, 0
		debug := d.cfg.Logger.IsDebug()
		for i, o := range out {
			d.cfg.Observer.Ticks(o, 1)
			if debug {
				d.cfg.Logger.Debug("tick written", "connection_id", batch[i].ConnectionID, "due_at", batch[i].DueAt.UTC().Format(time.RFC3339Nano),
					"outcome", string(o), "claimed", batch[i].ClaimBy != "", "dropped", batch[i].Dropped)
			}
			switch o {
			case store.TickRecorded:
				recorded++
				coalesced += batch[i].Dropped
			case store.TickCoalesced:
				coalesced += 1 + batch[i].Dropped
			}
		}
		if coalesced > 0 {
			d.cfg.Observer.Coalesced(coalesced)
		}
		if recorded > len(claimed) {
			// Claim what this batch left pending while the next is
			// written, here and on the other hosts.
			d.Wake()
			d.notifyOthers()
		}
		batch = batch[n:]
	}
	return true
}

// reserve marks the ticks this host starts as soon as they are recorded —
// due now, up to the room its workers and prefetch have — to be recorded
// claimed by it, and holds that room until unreserve.
func (d *Dispatcher) reserve(ticks []store.Tick) int {
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return 0
	}
	room := d.limit() - d.busy - len(d.ready) - d.reserved
	n := 0
	for i := range ticks {
		if n >= room {
			break
		}
		if !ticks[i].RunAt.After(now) {
			ticks[i].ClaimBy = d.cfg.HostID
			n++
		}
	}
	d.reserved += n
	return n
}

func (d *Dispatcher) unreserve(n int) {
	d.mu.Lock()
	d.reserved -= n
	d.mu.Unlock()
}

// requeue puts unwritten ticks back ahead of those that arrived
// meanwhile, within MaxBuffered per connection; they are written at the
// next flush.
func (d *Dispatcher) requeue(batch []store.Tick) {
	d.tmu.Lock()
	defer d.tmu.Unlock()
	back := map[string][]bufferedTick{}
	for _, t := range batch {
		back[t.ConnectionID] = append(back[t.ConnectionID], bufferedTick{
			Tick:    schedule.Tick{ConnectionID: t.ConnectionID, Gen: t.ScheduleGen, DueAt: t.DueAt, RunAt: t.RunAt},
			dropped: t.Dropped})
	}
	for conn, q := range back {
		d.ticks[conn] = bound(append(q, d.ticks[conn]...))
		d.now[conn] = struct{}{}
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
	// look is when to look again without a wake-up: the earliest pending
	// run_at, at most PollInterval away, read once after each claim (new
	// work always wakes the loop), not at every worker that frees.
	var look time.Time
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
			look = time.Time{}
		}
		wait := d.cfg.PollInterval // with no room only a freed worker matters
		if free > 0 {
			if look.IsZero() {
				look = d.nextLook(ctx)
			}
			wait = max(look.Sub(d.cfg.Clock.Now()), 0)
		}
		timer := d.cfg.Clock.NewTimer(wait)
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
			due, look = true, time.Time{}
		}
		timer.Stop()
	}
}

// room is how many more occurrences this host takes now: its free
// workers, and room left in the prefetch.
func (d *Dispatcher) room() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.limit() - d.busy - len(d.ready) - d.reserved
}

// nextLook returns when the earliest pending occurrence falls due, at
// most PollInterval from now.
func (d *Dispatcher) nextLook(ctx context.Context) time.Time {
	now := d.cfg.Clock.Now()
	at := now.Add(d.cfg.PollInterval)
	if next, ok, err := d.cfg.Store.NextRunAt(ctx); err == nil && ok && next.Before(at) {
		at = next
	}
	return at
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
	if d.stopping {
		// Claimed as the host began to stop: hand them back.
		d.mu.Unlock()
		for _, o := range claimed {
			d.release(o)
		}
		return
	}
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
