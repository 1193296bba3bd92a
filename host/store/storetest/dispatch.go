package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// tick is a tick of c due at due (run at due+offset) under c's current
// schedule generation.
func (f *fixture) tick(c store.Connection, due time.Time, offset time.Duration) store.Tick {
	f.t.Helper()
	cur := must(f.s.GetConnection(f.ctx, c.ID))(f.t)
	return store.Tick{ConnectionID: c.ID, ScheduleGen: cur.ScheduleGen, DueAt: due, RunAt: due.Add(offset)}
}

func (f *fixture) record(ticks ...store.Tick) []store.TickOutcome {
	f.t.Helper()
	out, _, err := f.s.RecordTicks(f.ctx, ticks)
	if err != nil {
		f.t.Fatalf("RecordTicks: %v", err)
	}
	return out
}

func (f *fixture) complete(cs ...store.Completion) []store.CompletionOutcome {
	f.t.Helper()
	return must(f.s.CompleteOccurrences(f.ctx, cs))(f.t)
}

func (f *fixture) queue(connID string) []store.Occurrence {
	f.t.Helper()
	return must(f.s.ListOccurrences(f.ctx, store.OccurrenceFilter{ConnectionID: connID}))(f.t)
}

// claimOne claims the one due occurrence for holder.
func (f *fixture) claimOne(holder string) store.Occurrence {
	f.t.Helper()
	got := must(f.s.ClaimDue(f.ctx, holder, f.now().Add(time.Hour), 1))(f.t)
	if len(got) != 1 {
		f.t.Fatalf("claimed %d occurrences, want 1", len(got))
	}
	return got[0]
}

func testRecordTicks(t *testing.T, f *fixture) {
	a, b := f.connection("alpha"), f.connection("alpha")
	due := f.now().Truncate(time.Second).Add(time.Minute)

	got := f.record(f.tick(a, due, 5*time.Second), f.tick(b, due, 0))
	diff(t, "first ticks", []store.TickOutcome{store.TickRecorded, store.TickRecorded}, got)
	q := f.queue(a.ID)
	if len(q) != 1 || q[0].Trigger != store.TriggerScheduled || !q[0].DueAt.Equal(due) || !q[0].RunAt.Equal(due.Add(5*time.Second)) ||
		q[0].State != store.OccurrencePending || q[0].Attempt != 1 || q[0].RunID != "" {
		t.Fatalf("queue of a = %+v", q)
	}

	// The same instant again (another host, or a clock behind) is a
	// duplicate; so is an earlier one. A later one coalesces into the
	// pending occurrence and is counted.
	diff(t, "same instant", []store.TickOutcome{store.TickDuplicate}, f.record(f.tick(a, due, 0)))
	diff(t, "earlier instant", []store.TickOutcome{store.TickDuplicate}, f.record(f.tick(a, due.Add(-time.Minute), 0)))
	later := due.Add(time.Minute)
	diff(t, "later instant", []store.TickOutcome{store.TickCoalesced}, f.record(f.tick(a, later, 0)))
	ca := must(f.s.GetConnection(f.ctx, a.ID))(t)
	if ca.CoalescedTicks != 1 || !ca.LastCoalescedAt.Equal(later) || !ca.LastDueAt.Equal(later) {
		t.Fatalf("after a coalesced tick: coalesced=%d last=%s last_due=%s", ca.CoalescedTicks, ca.LastCoalescedAt, ca.LastDueAt)
	}
	if q := f.queue(a.ID); len(q) != 1 || !q[0].DueAt.Equal(due) {
		t.Fatalf("a coalesced tick changed the pending occurrence: %+v", q)
	}

	// A tick of an older schedule generation, of a paused connection, or
	// of a missing one is stale.
	old := f.tick(b, due.Add(time.Hour), 0)
	sched := store.Schedule{Spec: "@every 5m"}
	must(f.s.UpdateConnection(f.ctx, b.ID, store.ConnectionPatch{Schedule: &sched}))(t)
	diff(t, "old generation", []store.TickOutcome{store.TickStale}, f.record(old))
	c := f.connection("alpha")
	pausedTick := f.tick(c, due, 0)
	must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionPaused))(t)
	diff(t, "paused", []store.TickOutcome{store.TickStale}, f.record(pausedTick))
	diff(t, "missing connection", []store.TickOutcome{store.TickStale},
		f.record(store.Tick{ConnectionID: "conn_missing", DueAt: due, RunAt: due}))

	// The new generation starts a fresh watermark: its first instant is
	// recorded even if it is earlier than what the old one recorded.
	diff(t, "new generation", []store.TickOutcome{store.TickRecorded}, f.record(f.tick(b, due.Add(-time.Hour), 0)))

	for name, bad := range map[string]store.Tick{
		"no connection": {DueAt: due, RunAt: due},
		"no due":        {ConnectionID: a.ID, RunAt: due},
		"run before":    {ConnectionID: a.ID, DueAt: due, RunAt: due.Add(-time.Second)},
	} {
		t.Run("invalid "+name, func(t *testing.T) {
			_, _, err := f.s.RecordTicks(f.ctx, []store.Tick{f.tick(a, later.Add(time.Hour), 0), bad})
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	// An invalid batch records nothing.
	if ca := must(f.s.GetConnection(f.ctx, a.ID))(t); !ca.LastDueAt.Equal(later) {
		t.Fatalf("an invalid batch moved the watermark to %s", ca.LastDueAt)
	}
}

// A tick with a claimer is recorded claimed by it and returned, so the
// recorder's host starts it without a claim; one that coalesces or is a
// duplicate claims nothing. Ticks without a claimer stay pending.
func testRecordTicksClaimed(t *testing.T, f *fixture) {
	a, b, c := f.connection("alpha"), f.connection("alpha"), f.connection("alpha")
	due := f.now().Truncate(time.Second)
	ta, tb, tc := f.tick(a, due, 0), f.tick(b, due, 2*time.Second), f.tick(c, due, 0)
	ta.ClaimBy, tb.ClaimBy = "host-a", "host-a"
	out, claimed, err := f.s.RecordTicks(f.ctx, []store.Tick{ta, tb, tc})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "outcomes", []store.TickOutcome{store.TickRecorded, store.TickRecorded, store.TickRecorded}, out)
	if len(claimed) != 2 {
		t.Fatalf("claimed %+v, want the ticks of a and b", claimed)
	}
	for i, want := range []store.Tick{ta, tb} {
		got := claimed[i]
		q := f.queue(want.ConnectionID)
		if got.ConnectionID != want.ConnectionID || got.State != store.OccurrenceClaimed || got.ClaimedBy != "host-a" ||
			!got.DueAt.Equal(want.DueAt) || !got.RunAt.Equal(want.RunAt) || got.Trigger != store.TriggerScheduled || got.Attempt != 1 ||
			len(q) != 1 || q[0].ID != got.ID || q[0].State != store.OccurrenceClaimed || q[0].ClaimedBy != "host-a" ||
			!q[0].ClaimedAt.Equal(got.ClaimedAt) {
			t.Fatalf("claimed occurrence %d = %+v, stored %+v", i, got, q)
		}
	}
	if q := f.queue(c.ID); len(q) != 1 || q[0].State != store.OccurrencePending || q[0].ClaimedBy != "" {
		t.Fatalf("the tick without a claimer: %+v", q)
	}
	// Nobody else claims them; the pending one is claimable.
	if got := must(f.s.ClaimDue(f.ctx, "host-b", due.Add(time.Hour), 10))(t); len(got) != 1 || got[0].ConnectionID != c.ID {
		t.Fatalf("host-b claimed %+v, want only c's", got)
	}
	// A later tick of a, claimed or not, coalesces and claims nothing.
	later := f.tick(a, due.Add(time.Minute), 0)
	later.ClaimBy = "host-a"
	out, claimed, err = f.s.RecordTicks(f.ctx, []store.Tick{later})
	if err != nil || len(claimed) != 0 {
		t.Fatalf("coalesced tick: %v, claimed %+v", err, claimed)
	}
	diff(t, "later tick", []store.TickOutcome{store.TickCoalesced}, out)
	// The claim completes like any other.
	diff(t, "complete", []store.CompletionOutcome{store.CompletionDone},
		f.complete(store.Completion{ConnectionID: a.ID, OccurrenceID: f.queue(a.ID)[0].ID, Holder: "host-a"}))
}

// Every host records the same instants; each is recorded once, and the
// rest are duplicates or coalesced — never a second occurrence.
func testRecordTicksConcurrentHosts(t *testing.T, f *fixture) {
	const conns, hosts, instants = 8, 3, 4
	var cs []store.Connection
	for range conns {
		cs = append(cs, f.connection("alpha"))
	}
	base := f.now().Truncate(time.Second)
	var (
		mu       sync.Mutex
		outcomes = map[store.TickOutcome]int{}
		wg       sync.WaitGroup
	)
	for h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range instants {
				var ticks []store.Tick
				for k := range cs {
					c := cs[(k+h)%conns] // each host in its own order
					due := base.Add(time.Duration(i) * time.Second)
					ticks = append(ticks, store.Tick{ConnectionID: c.ID, DueAt: due, RunAt: due})
				}
				got, _, err := f.s.RecordTicks(f.ctx, ticks)
				if err != nil {
					t.Errorf("host %d: %v", h, err)
					return
				}
				mu.Lock()
				for _, o := range got {
					outcomes[o]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if outcomes[store.TickRecorded] != conns {
		t.Fatalf("outcomes = %v: want exactly one recorded occurrence per connection", outcomes)
	}
	var coalesced int64
	for _, c := range cs {
		if q := f.queue(c.ID); len(q) != 1 {
			t.Fatalf("connection %s has %d occurrences", c.ID, len(q))
		}
		coalesced += must(f.s.GetConnection(f.ctx, c.ID))(t).CoalescedTicks
	}
	if int(coalesced) != outcomes[store.TickCoalesced] {
		t.Fatalf("connections count %d coalesced ticks, RecordTicks reported %d", coalesced, outcomes[store.TickCoalesced])
	}
	if outcomes[store.TickCoalesced] != conns*(instants-1) {
		t.Fatalf("outcomes = %v: every later instant coalesces once", outcomes)
	}
}

func testClaimDue(t *testing.T, f *fixture) {
	now := f.now()
	a, b, c := f.connection("alpha"), f.connection("alpha"), f.connection("alpha")
	f.record(f.tick(a, now.Add(-2*time.Second), 0), f.tick(b, now.Add(-3*time.Second), time.Hour))
	if next, ok := must2(f.s.NextRunAt(f.ctx))(t); !ok || !next.Equal(now.Add(-2*time.Second)) {
		t.Fatalf("NextRunAt = %s, %v", next, ok)
	}
	manual := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: c.ID}))(t)

	got := must(f.s.ClaimDue(f.ctx, "host-a", now, 10))(t)
	// b's run_at is an hour away; the manual run comes first.
	if len(got) != 2 || got[0].ConnectionID != c.ID || got[1].ConnectionID != a.ID {
		t.Fatalf("claimed %+v", got)
	}
	for _, o := range got {
		if o.State != store.OccurrenceClaimed || o.ClaimedBy != "host-a" || o.ClaimedAt.IsZero() {
			t.Fatalf("claimed occurrence %+v", o)
		}
	}
	if r := must(f.s.GetRun(f.ctx, manual.ID))(t); r.HostID != "host-a" || r.Status != store.RunQueued {
		t.Fatalf("a claimed manual run = %+v, want host_id host-a, queued", r)
	}
	if again := must(f.s.ClaimDue(f.ctx, "host-b", now, 10))(t); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	if later := must(f.s.ClaimDue(f.ctx, "host-b", now.Add(time.Hour), 10))(t); len(later) != 1 || later[0].ConnectionID != b.ID {
		t.Fatalf("claim after b's run_at = %+v", later)
	}
	if none := must(f.s.ClaimDue(f.ctx, "host-b", now.Add(time.Hour), 0))(t); len(none) != 0 {
		t.Fatalf("limit 0 claimed %+v", none)
	}
	if _, ok := must2(f.s.NextRunAt(f.ctx))(t); ok {
		t.Fatal("NextRunAt reports a pending occurrence with none pending")
	}
	_, err := f.s.ClaimDue(f.ctx, "", now, 1)
	wantErr(t, err, store.ErrInvalid, "")
}

// Claimers racing for the same queue never take one occurrence twice.
func testClaimDueExclusive(t *testing.T, f *fixture) {
	const conns, claimers = 40, 4
	now := f.now()
	var ticks []store.Tick
	for range conns {
		c := f.connection("alpha")
		ticks = append(ticks, store.Tick{ConnectionID: c.ID, DueAt: now, RunAt: now})
	}
	f.record(ticks...)
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		wg   sync.WaitGroup
	)
	for i := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("host-%d", i)
			for {
				got, err := f.s.ClaimDue(f.ctx, holder, now, 3)
				if err != nil {
					t.Errorf("%s: %v", holder, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, o := range got {
					if prev, dup := seen[o.ID]; dup {
						t.Errorf("occurrence %s claimed by %s and %s", o.ID, prev, holder)
					}
					seen[o.ID] = holder
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != conns {
		t.Fatalf("claimed %d of %d occurrences", len(seen), conns)
	}
}

func testCompleteOccurrence(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	due := f.now()
	f.record(f.tick(c, due, 0))
	o := f.claimOne("host-a")
	r := must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerScheduled, HostID: "host-a",
		ScheduledFor: due, OccurrenceID: o.ID}))(t)
	if !r.ScheduledFor.Equal(f.trunc(due)) {
		t.Fatalf("run scheduled_for = %s, want %s", r.ScheduledFor, due)
	}
	if q := f.queue(c.ID); q[0].RunID != r.ID {
		t.Fatalf("occurrence not bound to its run: %+v", q[0])
	}

	// Another holder cannot complete it; a bad retry is refused.
	diff(t, "other holder", []store.CompletionOutcome{store.CompletionLost},
		f.complete(store.Completion{ConnectionID: c.ID, OccurrenceID: o.ID, Holder: "host-b"}))
	_, err := f.s.CompleteOccurrences(f.ctx, []store.Completion{{ConnectionID: c.ID, OccurrenceID: o.ID, Holder: "host-a",
		Retry: &store.Retry{Attempt: 1}}})
	wantErr(t, err, store.ErrInvalid, "")

	// A retry replaces it, pending, at the backoff instant.
	at := f.now().Add(30 * time.Second)
	got := f.complete(store.Completion{ConnectionID: c.ID, OccurrenceID: o.ID, Holder: "host-a",
		Retry: &store.Retry{RunAt: at, Attempt: 2, RetryOf: r.ID}})
	q := f.queue(c.ID)
	if got[0] != store.CompletionRetried || len(q) != 1 || q[0].Trigger != store.TriggerRetry || q[0].Attempt != 2 || q[0].RetryOf != r.ID ||
		!q[0].RunAt.Equal(f.trunc(at)) || q[0].State != store.OccurrencePending || q[0].RunID != "" || q[0].ID == o.ID {
		t.Fatalf("retry = %v, queue %+v", got, q)
	}
	// While the retry is pending, ticks coalesce.
	diff(t, "tick during retry", []store.TickOutcome{store.TickCoalesced}, f.record(f.tick(c, due.Add(time.Minute), 0)))

	// A retry of a connection paused meanwhile is dropped.
	o2 := f.claimOne("host-a")
	must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionPaused))(t)
	got = f.complete(store.Completion{ConnectionID: c.ID, OccurrenceID: o2.ID, Holder: "host-a",
		Retry: &store.Retry{RunAt: at, Attempt: 3, RetryOf: r.ID}})
	if got[0] != store.CompletionDone || len(f.queue(c.ID)) != 0 {
		t.Fatalf("retry of a paused connection: %v, queue %+v", got, f.queue(c.ID))
	}
	diff(t, "completed twice", []store.CompletionOutcome{store.CompletionLost},
		f.complete(store.Completion{ConnectionID: c.ID, OccurrenceID: o2.ID, Holder: "host-a"}))

	// A batch completes each of its occurrences in one transaction.
	d, e := f.connection("alpha"), f.connection("alpha")
	f.record(f.tick(d, due, 0), f.tick(e, due, 0))
	claimed := must(f.s.ClaimDue(f.ctx, "host-a", f.now(), 10))(t)
	var batch []store.Completion
	for _, o := range claimed {
		batch = append(batch, store.Completion{ConnectionID: o.ConnectionID, OccurrenceID: o.ID, Holder: "host-a"})
	}
	batch = append(batch, store.Completion{ConnectionID: c.ID, OccurrenceID: "occ_gone", Holder: "host-a"})
	diff(t, "batch", []store.CompletionOutcome{store.CompletionDone, store.CompletionDone, store.CompletionLost}, f.complete(batch...))
	if q := must(f.s.ListOccurrences(f.ctx, store.OccurrenceFilter{}))(t); len(q) != 0 {
		t.Fatalf("queue after the batch = %+v", q)
	}

	// Creating a run for an occurrence the host no longer holds fails.
	_, err = f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerScheduled, HostID: "host-a", OccurrenceID: o2.ID})
	wantErr(t, err, store.ErrOccurrenceLost, "")
}

func testEnqueueManual(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	due := f.now()
	f.record(f.tick(c, due, time.Hour))

	// A manual run replaces the pending scheduled occurrence.
	r := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: c.ID}))(t)
	if r.Status != store.RunQueued || r.Trigger != store.TriggerManual || r.HostID != "" || !r.ScheduledFor.IsZero() {
		t.Fatalf("queued run = %+v", r)
	}
	q := f.queue(c.ID)
	if len(q) != 1 || q[0].Trigger != store.TriggerManual || q[0].RunID != r.ID || q[0].RunAt.After(f.now()) {
		t.Fatalf("queue = %+v", q)
	}
	if cc := must(f.s.GetConnection(f.ctx, c.ID))(t); cc.CoalescedTicks != 1 {
		t.Fatalf("the replaced scheduled occurrence is not counted: %d", cc.CoalescedTicks)
	}

	// A second manual trigger is refused while the first is queued, and
	// while it runs; the error names the run.
	for _, step := range []string{"queued", "claimed"} {
		if step == "claimed" {
			f.claimOne("host-b")
		}
		_, err := f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: c.ID})
		wantErr(t, err, store.ErrLeaseHeld, failure.RunActive)
		var qe *store.QueuedError
		if !asErr(err, &qe) || qe.RunID != r.ID {
			t.Fatalf("%s: error = %v, want a QueuedError naming %s", step, err, r.ID)
		}
	}
	// Once its run ended, a leftover claim does not block the next one.
	f.lease(c.ID, r.ID, "host-b", time.Minute)
	must(f.s.MarkRunRunning(f.ctx, r.ID, nil))(t)
	must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunSucceeded}))(t)
	must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: c.ID}))(t)

	_, err := f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: "conn_missing"})
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	rev := f.connection("alpha")
	must(f.s.SetConnectionState(f.ctx, rev.ID, store.ConnectionRevoked))(t)
	_, err = f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: rev.ID})
	if failure.CodeOf(err) != failure.ConnectionRevoked {
		t.Fatalf("manual run of a revoked connection: %v", err)
	}
	// A paused connection still takes manual runs.
	p := f.connection("alpha")
	must(f.s.SetConnectionState(f.ctx, p.ID, store.ConnectionPaused))(t)
	must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: p.ID}))(t)
}

// Pausing, rescheduling, revoking or deleting a connection removes its
// pending occurrences in the change's own transaction.
func testScheduleChangesClearTheQueue(t *testing.T, f *fixture) {
	sched := store.Schedule{Spec: "@yearly"}
	for name, tc := range map[string]struct {
		change func(id string) error
		// manual is what becomes of a queued manual run: "" (kept), or
		// the status it is finished with.
		manual store.RunStatus
	}{
		"pause": {change: func(id string) error {
			_, err := f.s.SetConnectionState(f.ctx, id, store.ConnectionPaused)
			return err
		}},
		"reschedule": {change: func(id string) error {
			_, err := f.s.UpdateConnection(f.ctx, id, store.ConnectionPatch{Schedule: &sched})
			return err
		}},
		"revoke": {manual: store.RunRefused, change: func(id string) error {
			_, err := f.s.SetConnectionState(f.ctx, id, store.ConnectionRevoked)
			return err
		}},
		"delete": {manual: store.RunCancelled, change: func(id string) error {
			_, err := f.s.DeleteConnection(f.ctx, id)
			return err
		}},
	} {
		t.Run(name, func(t *testing.T) {
			scheduled, manual := f.connection("alpha"), f.connection("alpha")
			f.record(f.tick(scheduled, f.now(), time.Minute))
			r := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: manual.ID}))(t)
			if err := tc.change(scheduled.ID); err != nil {
				t.Fatal(err)
			}
			if err := tc.change(manual.ID); err != nil {
				t.Fatal(err)
			}
			if q := f.queue(scheduled.ID); len(q) != 0 {
				t.Fatalf("pending scheduled occurrence survived %s: %+v", name, q)
			}
			got := must(f.s.GetRun(f.ctx, r.ID))(t)
			q := f.queue(manual.ID)
			if tc.manual == "" {
				if len(q) != 1 || got.Status != store.RunQueued {
					t.Fatalf("a queued manual run did not survive %s: %+v, %+v", name, q, got)
				}
				return
			}
			if len(q) != 0 || got.Status != tc.manual || got.EndedAt.IsZero() || got.FailureCode == "" {
				t.Fatalf("queued manual run after %s = %+v, queue %+v", name, got, q)
			}
		})
	}
}

// An occurrence a worker claimed before the schedule moved starts nothing
// after the move; a manual one still starts.
func testClaimedBeforeAScheduleChangeStartsNothing(t *testing.T, f *fixture) {
	c, m := f.connection("alpha"), f.connection("alpha")
	f.record(f.tick(c, f.now(), 0))
	manual := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: m.ID}))(t)
	claimed := must(f.s.ClaimDue(f.ctx, "host-a", f.now(), 10))(t)
	if len(claimed) != 2 {
		t.Fatalf("claimed %+v", claimed)
	}
	yearly := store.Schedule{Spec: "@yearly"}
	for _, id := range []string{c.ID, m.ID} {
		must(f.s.UpdateConnection(f.ctx, id, store.ConnectionPatch{Schedule: &yearly}))(t)
	}
	for _, o := range claimed {
		if o.Trigger == store.TriggerManual {
			// A manual run is not the schedule's: its claim and its
			// queued run are intact.
			if q := f.queue(o.ConnectionID); len(q) != 1 || q[0].RunID != manual.ID || q[0].State != store.OccurrenceClaimed {
				t.Fatalf("manual occurrence after a reschedule = %+v", q)
			}
			continue
		}
		_, err := f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: o.ConnectionID, Trigger: o.Trigger, HostID: "host-a", OccurrenceID: o.ID})
		wantErr(t, err, store.ErrOccurrenceLost, "")
	}
}

func testReleaseAndCancelQueued(t *testing.T, f *fixture) {
	a, m := f.connection("alpha"), f.connection("alpha")
	f.record(f.tick(a, f.now(), 0))
	r := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: m.ID}))(t)
	got := must(f.s.ClaimDue(f.ctx, "host-a", f.now(), 10))(t)
	if len(got) != 2 {
		t.Fatalf("claimed %+v", got)
	}
	for _, o := range got {
		must0(f.s.ReleaseOccurrence(f.ctx, o.ConnectionID, o.ID, "host-a"))(t)
	}
	if p := must(f.s.ListOccurrences(f.ctx, store.OccurrenceFilter{State: store.OccurrencePending}))(t); len(p) != 2 {
		t.Fatalf("released occurrences not pending: %+v", p)
	}
	// A started occurrence cannot be released.
	o := f.claimOne("host-a")
	if o.ConnectionID != m.ID {
		t.Fatalf("manual run not claimed first: %+v", o)
	}
	f.lease(m.ID, r.ID, "host-a", time.Minute)
	must(f.s.MarkRunRunning(f.ctx, r.ID, nil))(t)
	wantErr(t, f.s.ReleaseOccurrence(f.ctx, m.ID, o.ID, "host-a"), store.ErrOccurrenceLost, "")

	// A queued manual run no worker claimed cancels in place.
	n := f.connection("alpha")
	q := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: n.ID}))(t)
	res := store.RunResult{Status: store.RunCancelled, FailureCode: failure.Cancelled, FailureMessage: "cancelled by operator"}
	got2 := must(f.s.CancelQueuedRun(f.ctx, q.ID, res))(t)
	if got2.Status != store.RunCancelled || len(f.queue(n.ID)) != 0 {
		t.Fatalf("cancel queued: %+v, queue %+v", got2, f.queue(n.ID))
	}
	_, err := f.s.CancelQueuedRun(f.ctx, q.ID, res)
	wantErr(t, err, store.ErrRunState, "")
	_, err = f.s.CancelQueuedRun(f.ctx, r.ID, res) // running
	wantErr(t, err, store.ErrRunState, "")
	claimed := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: n.ID}))(t)
	f.claimOne("host-b")
	_, err = f.s.CancelQueuedRun(f.ctx, claimed.ID, res)
	wantErr(t, err, store.ErrOccurrenceLost, "")
}

// ReleaseClaims hands back every unstarted claim of a holder at once —
// scheduled, retry and queued manual ones — and leaves started runs and
// other holders' claims alone.
func testReleaseClaims(t *testing.T, f *fixture) {
	a, b, m, s := f.connection("alpha"), f.connection("alpha"), f.connection("alpha"), f.connection("alpha")
	f.record(f.tick(a, f.now(), 0), f.tick(b, f.now(), 0), f.tick(s, f.now(), 0))
	r := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: m.ID}))(t)
	got := must(f.s.ClaimDue(f.ctx, "host-a", f.now(), 3))(t) // m first, then two of a, b, s
	other := must(f.s.ClaimDue(f.ctx, "host-b", f.now(), 1))(t)
	if len(got) != 3 || len(other) != 1 {
		t.Fatalf("claimed %+v and %+v", got, other)
	}
	// One of host-a's scheduled claims starts a run.
	var started store.Occurrence
	for _, o := range got {
		if o.Trigger == store.TriggerScheduled {
			started = o
			break
		}
	}
	run := must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: started.ConnectionID, Trigger: store.TriggerScheduled,
		HostID: "host-a", ScheduledFor: started.DueAt, OccurrenceID: started.ID}))(t)
	if n := must(f.s.ReleaseClaims(f.ctx, "host-a"))(t); n != 1+1 {
		t.Fatalf("released %d, want the manual run and the unstarted scheduled one", n)
	}
	for _, o := range must(f.s.ListOccurrences(f.ctx, store.OccurrenceFilter{}))(t) {
		switch o.ConnectionID {
		case started.ConnectionID:
			if o.State != store.OccurrenceClaimed || o.ClaimedBy != "host-a" || o.RunID != run.ID {
				t.Fatalf("the started occurrence was released: %+v", o)
			}
		case other[0].ConnectionID:
			if o.State != store.OccurrenceClaimed || o.ClaimedBy != "host-b" {
				t.Fatalf("another host's claim was released: %+v", o)
			}
		default:
			if o.State != store.OccurrencePending || o.ClaimedBy != "" {
				t.Fatalf("an unstarted claim was kept: %+v", o)
			}
		}
	}
	if q := must(f.s.GetRun(f.ctx, r.ID))(t); q.Status != store.RunQueued || q.HostID != "" {
		t.Fatalf("released manual run = %+v, want queued on no host", q)
	}
	_, err := f.s.ReleaseClaims(f.ctx, "")
	wantErr(t, err, store.ErrInvalid, "")
}

func testHosts(t *testing.T, f *fixture) {
	a := must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-a", Addr: "127.0.0.1:7481", Version: "v1"}))(t)
	if a.Status != store.HostLive || !a.StartedAt.Equal(f.now()) || !a.LastSeen.Equal(f.now()) || a.Addr != "127.0.0.1:7481" {
		t.Fatalf("registered = %+v", a)
	}
	f.advance(time.Second)
	must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-b"}))(t)
	f.advance(time.Second)
	hb := must(f.s.HeartbeatHost(f.ctx, "host-a", 3))(t)
	if !hb.LastSeen.Equal(f.now()) || hb.RunsActive != 3 {
		t.Fatalf("heartbeat = %+v", hb)
	}
	hs := must(f.s.ListHosts(f.ctx))(t)
	if len(hs) != 2 || hs[0].ID != "host-b" || hs[1].ID != "host-a" {
		t.Fatalf("hosts = %+v", hs)
	}
	must0(f.s.StopHost(f.ctx, "host-b"))(t)
	_, err := f.s.HeartbeatHost(f.ctx, "host-b", 0)
	wantErr(t, err, store.ErrHostNotLive, "")
	_, err = f.s.HeartbeatHost(f.ctx, "host-missing", 0)
	wantErr(t, err, store.ErrHostNotLive, "")
	hs = must(f.s.ListHosts(f.ctx))(t)
	if hs[0].Status != store.HostStopped || hs[0].EndedAt.IsZero() {
		t.Fatalf("stopped host = %+v", hs[0])
	}
	// A stopped host registering again is live.
	if b := must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-b"}))(t); b.Status != store.HostLive || !b.EndedAt.IsZero() {
		t.Fatalf("re-registered = %+v", b)
	}
	_, err = f.s.RegisterHost(f.ctx, store.NewHost{})
	wantErr(t, err, store.ErrInvalid, "")
}

// A dead host's work comes back: started runs fail host_crashed, its
// leases go, and what it claimed without starting is pending again.
func testReapHosts(t *testing.T, f *fixture) {
	must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-dead"}))(t)
	must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-self"}))(t)
	running, unstarted, queuedManual, bound := f.connection("alpha"), f.connection("alpha"), f.connection("alpha"), f.connection("alpha")
	f.record(f.tick(running, f.now(), 0), f.tick(unstarted, f.now(), 0), f.tick(bound, f.now(), 0))
	manual := must(f.s.EnqueueManual(f.ctx, store.ManualRun{ConnectionID: queuedManual.ID}))(t)
	claimed := must(f.s.ClaimDue(f.ctx, "host-dead", f.now(), 10))(t)
	if len(claimed) != 4 {
		t.Fatalf("claimed %+v", claimed)
	}
	byConn := map[string]store.Occurrence{}
	for _, o := range claimed {
		byConn[o.ConnectionID] = o
	}
	// running: a run that started; bound: a run row created, not started.
	r := must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: running.ID, Trigger: store.TriggerScheduled, HostID: "host-dead",
		OccurrenceID: byConn[running.ID].ID}))(t)
	f.lease(running.ID, r.ID, "host-dead", time.Hour)
	must(f.s.MarkRunRunning(f.ctx, r.ID, nil))(t)
	rb := must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: bound.ID, Trigger: store.TriggerScheduled, HostID: "host-dead",
		OccurrenceID: byConn[bound.ID].ID}))(t)

	f.advance(time.Minute)
	must(f.s.HeartbeatHost(f.ctx, "host-self", 0))(t)
	if got := must(f.s.ReapHosts(f.ctx, "host-self", f.now().Add(-2*time.Minute)))(t); len(got) != 0 {
		t.Fatalf("reaped a host that heartbeated within the TTL: %+v", got)
	}
	got := must(f.s.ReapHosts(f.ctx, "host-self", f.now().Add(-30*time.Second)))(t)
	if len(got) != 1 || got[0].Host.ID != "host-dead" || got[0].Host.Status != store.HostCrashed {
		t.Fatalf("reaped %+v", got)
	}
	reap := got[0]
	failed := map[string]bool{}
	for _, run := range reap.Runs {
		if run.Status != store.RunFailed || run.FailureCode != failure.HostCrashed {
			t.Fatalf("reaped run %+v", run)
		}
		failed[run.ID] = true
	}
	if len(failed) != 2 || !failed[r.ID] || !failed[rb.ID] {
		t.Fatalf("failed runs = %v, want %s and %s", failed, r.ID, rb.ID)
	}
	if reap.Released != 2 || len(reap.Leases) != 1 || reap.Leases[0].RunID != r.ID {
		t.Fatalf("released %d, leases %+v", reap.Released, reap.Leases)
	}
	if q := f.queue(unstarted.ID); len(q) != 1 || q[0].State != store.OccurrencePending {
		t.Fatalf("unstarted occurrence = %+v", q)
	}
	if q := f.queue(queuedManual.ID); len(q) != 1 || q[0].State != store.OccurrencePending || q[0].RunID != manual.ID {
		t.Fatalf("queued manual occurrence = %+v", q)
	}
	if m := must(f.s.GetRun(f.ctx, manual.ID))(t); m.Status != store.RunQueued || m.HostID != "" {
		t.Fatalf("a manual run that never started = %+v, want still queued, on no host", m)
	}
	for _, c := range []string{running.ID, bound.ID} {
		if q := f.queue(c); len(q) != 0 {
			t.Fatalf("a started occurrence survived the reap: %+v", q)
		}
	}
	if f.leased(running.ID) {
		t.Fatal("the dead host's lease survived")
	}
	// Reaped once; the reaped host cannot heartbeat back into its work.
	if again := must(f.s.ReapHosts(f.ctx, "host-self", f.now()))(t); len(again) != 0 {
		t.Fatalf("reaped twice: %+v", again)
	}
	_, err := f.s.HeartbeatHost(f.ctx, "host-dead", 0)
	wantErr(t, err, store.ErrHostNotLive, "")
	// Its runs are listed by host.
	page := must(f.s.ListRuns(f.ctx, store.RunFilter{HostID: "host-dead"}))(t)
	if len(page.Runs) != 2 {
		t.Fatalf("runs of host-dead = %+v", page.Runs)
	}
}

// A host that stops hands back at once what it claimed and did not start.
func testStopHostHandsWorkBack(t *testing.T, f *fixture) {
	must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-a"}))(t)
	c := f.connection("alpha")
	f.record(f.tick(c, f.now(), 0))
	f.claimOne("host-a")
	must0(f.s.StopHost(f.ctx, "host-a"))(t)
	if q := f.queue(c.ID); len(q) != 1 || q[0].State != store.OccurrencePending {
		t.Fatalf("queue after stop = %+v", q)
	}
}

func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func must0(err error) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// trunc is t at the precision every backend keeps (microseconds).
func (f *fixture) trunc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
