package dispatch_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/jonboulle/clockwork"
)

// The load that broke the in-memory dispatcher (issue 9): 100 connections
// due every second, 16 workers, runs slower than the schedule can keep up
// with. Goroutines and heap stay flat, the queue never holds more than one
// occurrence per connection, the ticks that find their connection busy
// are counted, every instant runs at most once, a reschedule to yearly
// starts nothing afterwards, and shutdown leaves no queued run and no
// internal refusal behind.
func TestBoundedUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		conns   = 100
		workers = 16
		load    = 6 * time.Second
	)
	w := &work{Work: 400 * time.Millisecond} // 16 workers serve 40 runs/s of the 100/s due
	r := newRig(t, rigOptions{Workers: workers, Work: w})
	cs := r.connections(conns, "@every 1s", 0)

	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var (
		peakGoroutines, peakPending int
		heapAt                      []uint64
	)
	sample := func() {
		if g := runtime.NumGoroutine(); g > peakGoroutines {
			peakGoroutines = g
		}
		if p := len(r.occurrences(store.OccurrenceFilter{})); p > peakPending {
			peakPending = p
		}
	}
	deadline := time.Now().Add(load)
	for i := 0; time.Now().Before(deadline); i++ {
		time.Sleep(250 * time.Millisecond)
		sample()
		if i%4 == 3 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heapAt = append(heapAt, ms.HeapInuse)
		}
	}

	// Bounded by the pool and the connections, not by time: each worker
	// holds a run (its goroutine, the runner's, the lease renewer's), and
	// gocron runs each firing job's task on two short-lived goroutines of
	// its own, so a second in which every connection fires has up to two
	// per connection — three when, on a loaded machine (CI runs this under
	// -race beside other packages), a second's firings are still parked
	// as the next second's start (seen: 348 against 301). (The in-memory
	// dispatcher grew without bound: 14 → 4,317 in 75 s.)
	if bound := baseGoroutines + 4*workers + 3*conns + 20; peakGoroutines > bound {
		t.Errorf("goroutines peaked at %d (base %d, bound %d)", peakGoroutines, baseGoroutines, bound)
	}
	if peakPending > conns {
		t.Errorf("the queue held %d occurrences for %d connections", peakPending, conns)
	}
	if p := w.peak.Load(); p > workers {
		t.Errorf("%d runs at once with %d workers", p, workers)
	}
	if first, last := heapAt[0], heapAt[len(heapAt)-1]; last > first+16<<20 {
		t.Errorf("heap grew from %d to %d bytes under a steady load: %v", first, last, heapAt)
	}

	// Every instant of a connection ran at most once.
	seen := map[string]bool{}
	for _, run := range r.allRuns() {
		if run.Trigger != store.TriggerScheduled {
			continue
		}
		if run.ScheduledFor.IsZero() || run.HostID != hostID {
			t.Fatalf("scheduled run without scheduled_for or host: %+v", run)
		}
		key := run.ConnectionID + "@" + run.ScheduledFor.String()
		if seen[key] {
			t.Fatalf("instant %s ran twice", key)
		}
		seen[key] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d scheduled runs in %s", len(seen), load)
	}

	// A reschedule to yearly: nothing of the old schedule starts after it.
	yearly := "@yearly"
	changedAt := map[string]time.Time{}
	for _, c := range cs {
		if _, _, err := r.control.UpdateConnection(context.Background(), "operator", c.ID, store.ConnectionPatch{
			Schedule: &store.Schedule{Spec: yearly}}); err != nil {
			t.Fatal(err)
		}
		changedAt[c.ID] = time.Now()
	}
	time.Sleep(2 * time.Second)
	for _, run := range r.allRuns() {
		if at, ok := changedAt[run.ConnectionID]; ok && run.Trigger == store.TriggerScheduled && run.CreatedAt.After(at) {
			t.Fatalf("run %s started %s after its connection moved to yearly", run.ID, run.CreatedAt.Sub(at))
		}
	}
	if q := r.occurrences(store.OccurrenceFilter{State: store.OccurrencePending}); len(q) != 0 {
		t.Fatalf("pending occurrences after the reschedule: %d: %+v", len(q), q)
	}

	// Ticks that found their connection busy are counted, the same on the
	// connections and in the observer. Compared once the schedule is yearly
	// and no tick is in flight: the observer hears of a batch after its
	// transaction commits, so under load the two differ for a moment.
	var stored int64
	for _, c := range cs {
		got, err := r.store.GetConnection(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		stored += got.CoalescedTicks
	}
	r.obs.mu.Lock()
	observed, recorded := r.obs.coalesced, r.obs.outcomes[store.TickRecorded]
	r.obs.mu.Unlock()
	if stored == 0 || int64(observed) != stored {
		t.Fatalf("coalesced ticks: %d on the connections, %d observed", stored, observed)
	}
	t.Logf("%s: %d ticks recorded, %d coalesced, %d runs, goroutines %d→%d, heap %v",
		load, recorded, observed, len(seen), baseGoroutines, peakGoroutines, heapAt)

	// SIGTERM in the middle of a busy minute.
	yearlyAgain := "@every 1s"
	for _, c := range cs[:40] {
		if _, _, err := r.control.UpdateConnection(context.Background(), "operator", c.ID, store.ConnectionPatch{
			Schedule: &store.Schedule{Spec: yearlyAgain}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	r.shutdown()
	st, err := openAgain(t, r)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := store.RunFilter{Limit: store.MaxPageSize}
	for {
		page, err := st.ListRuns(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, run := range page.Runs {
			if run.Status == store.RunQueued || run.Status == store.RunRunning {
				t.Fatalf("run %s left %s by the shutdown", run.ID, run.Status)
			}
			if run.FailureCode == failure.Internal {
				t.Fatalf("run %s ended internal: %s", run.ID, run.FailureMessage)
			}
		}
		if page.Next == "" {
			break
		}
		f.Cursor = page.Next
	}
	if leases, _ := st.ListLeases(context.Background()); len(leases) != 0 {
		t.Fatalf("leases left by the shutdown: %+v", leases)
	}
	q, _ := st.ListOccurrences(context.Background(), store.OccurrenceFilter{State: store.OccurrenceClaimed})
	if len(q) != 0 {
		t.Fatalf("claims left by the shutdown: %+v", q)
	}
}

// Manual triggers go through the same bounded pool: beyond it they wait in
// the queue (status queued), and they are taken before scheduled work.
func TestManualTriggersQueueInThePool(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	w := &work{Fn: func(ctx context.Context, _ wire.RunRequest) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	r := newRig(t, rigOptions{Workers: 2, Work: w})
	cs := r.connections(6, "@yearly", 0)
	var queued []store.Run
	for _, c := range cs {
		run, err := r.disp.Enqueue(context.Background(), c.ID)
		if err != nil || run.Status != store.RunQueued || run.Trigger != store.TriggerManual {
			t.Fatalf("Enqueue = %+v, %v", run, err)
		}
		queued = append(queued, run)
	}
	r.waitFor(10*time.Second, "two runs started", func() bool { return w.running.Load() == 2 })
	time.Sleep(100 * time.Millisecond)
	if n := w.running.Load(); n != 2 {
		t.Fatalf("%d runs at once with 2 workers", n)
	}
	// A second trigger of a queued connection is refused, naming the run.
	_, err := r.disp.Enqueue(context.Background(), cs[5].ID)
	if failure.CodeOf(err) != failure.RunActive {
		t.Fatalf("second trigger of a queued connection = %v", err)
	}
	close(release)
	r.waitFor(20*time.Second, "every queued run succeeded", func() bool {
		for _, q := range queued {
			got, _ := r.store.GetRun(context.Background(), q.ID)
			if got.Status != store.RunSucceeded {
				return false
			}
		}
		return true
	})
	if p := w.peak.Load(); p > 2 {
		t.Fatalf("peak %d runs with 2 workers", p)
	}
}

// With occurrences claimed ahead (Prefetch), a manual run still goes
// before the scheduled runs waiting: at most the one a freed worker took
// first.
func TestManualRunsGoAheadOfPrefetchedWork(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		order   []string
		release = make(chan struct{}, 16)
	)
	w := &work{Fn: func(ctx context.Context, req wire.RunRequest) error {
		mu.Lock()
		order = append(order, req.ConnectionID)
		mu.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	r := newRig(t, rigOptions{Workers: 1, Prefetch: 1, Work: w})
	cs := r.connections(5, "@yearly", 0)
	blocker, manual, scheduled := cs[0], cs[1], cs[2:]
	if _, err := r.disp.Enqueue(context.Background(), blocker.ID); err != nil {
		t.Fatal(err)
	}
	r.waitFor(10*time.Second, "the blocker running", func() bool { return w.running.Load() == 1 })
	now := time.Now()
	var ticks []store.Tick
	for _, c := range scheduled {
		ticks = append(ticks, store.Tick{ConnectionID: c.ID, DueAt: now, RunAt: now})
	}
	if _, _, err := r.store.RecordTicks(context.Background(), ticks); err != nil {
		t.Fatal(err)
	}
	r.disp.Wake()
	r.waitFor(10*time.Second, "one scheduled occurrence claimed ahead", func() bool {
		return len(r.occurrences(store.OccurrenceFilter{State: store.OccurrenceClaimed})) == 2
	})
	if _, err := r.disp.Enqueue(context.Background(), manual.ID); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		release <- struct{}{}
	}
	r.waitFor(20*time.Second, "every run done", func() bool { return w.runs.Load() == 5 && w.running.Load() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if pos := slices.Index(order, manual.ID); pos > 2 {
		t.Fatalf("the manual run started %d of 5 (order %v): behind more than the one claimed ahead", pos+1, order)
	}
}

// A retry is an occurrence: queued after the backoff, run through the
// same seam with trigger retry, its instant in scheduled_for.
func TestRetryIsAnOccurrence(t *testing.T) {
	t.Parallel()
	w := &work{Fn: func(ctx context.Context, req wire.RunRequest) error {
		if req.Trigger == string(store.TriggerScheduled) {
			return retryable
		}
		return nil
	}}
	r := newRig(t, rigOptions{Workers: 1, Work: w, Retry: dispatch.RetryPolicy{MaxAttempts: 3, Base: 400 * time.Millisecond, Max: time.Second}})
	c := r.connections(1, "@every 1h", 0)[0]
	// Due now: the occurrence a tick would record.
	now := time.Now()
	if _, _, err := r.store.RecordTicks(context.Background(), []store.Tick{{ConnectionID: c.ID, DueAt: now, RunAt: now}}); err != nil {
		t.Fatal(err)
	}
	r.disp.Wake()
	var first, retry store.Run
	r.waitFor(20*time.Second, "the retry ran", func() bool {
		for _, run := range r.allRuns() {
			switch {
			case run.Trigger == store.TriggerScheduled && run.Status.Terminal():
				first = run
			case run.Trigger == store.TriggerRetry && run.Status.Terminal():
				retry = run
			}
		}
		return retry.ID != ""
	})
	if first.Status != store.RunFailed || retry.Status != store.RunSucceeded || retry.RetryOf != first.ID || retry.Attempt != 2 {
		t.Fatalf("first %+v, retry %+v", first, retry)
	}
	// The backoff (Rand 0: half of Base) is the retry's instant.
	if wait := retry.ScheduledFor.Sub(first.EndedAt); wait < 150*time.Millisecond || wait > 450*time.Millisecond {
		t.Fatalf("retry due %s after the failure, want about 200ms", wait)
	}
	if retry.StartedAt.Before(retry.ScheduledFor) {
		t.Fatalf("retry started %s before its instant", retry.ScheduledFor.Sub(retry.StartedAt))
	}
}

// Jitter shifts each occurrence's instant by a stable per-connection
// offset; no worker waits it out. A burst of connections due at one
// instant with 60 s of jitter drains across the window through one
// worker, each run starting within a step of its own offset.
func TestJitterShiftsTheInstantNotAWorker(t *testing.T) {
	t.Parallel()
	const (
		conns  = 200
		jitter = 60 * time.Second
		step   = time.Second
	)
	start := time.Now().UTC().Truncate(time.Hour).Add(59 * time.Minute) // a minute before the hour
	fc := clockwork.NewFakeClockAt(start)
	w := &work{Work: 0, Clock: fc}
	r := newRig(t, rigOptions{Workers: 1, Work: w, Clock: fc})
	cs := r.connections(conns, "@hourly", jitter)
	due := start.Add(time.Minute)
	fc.Advance(time.Minute) // the hour: every connection due at once
	for i := 0; i <= int(jitter/step)+1; i++ {
		// Let the recorder and the single worker catch up with this
		// second before the next.
		waitUntil := time.Now().Add(2 * time.Second)
		for time.Now().Before(waitUntil) {
			n := 0
			for _, c := range cs {
				if fc.Now().Sub(due) >= schedule.Offset(c.ID, jitter) {
					n++
				}
			}
			if int(w.runs.Load()) >= n {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fc.Advance(step)
	}
	r.waitFor(10*time.Second, "every connection ran", func() bool { return w.runs.Load() == conns })
	var late []time.Duration
	for _, run := range r.allRuns() {
		at, ok := w.startOf(run.ID)
		if !ok {
			continue
		}
		offset := schedule.Offset(run.ConnectionID, jitter)
		want := due.Add(offset)
		if !run.ScheduledFor.Equal(due) {
			t.Fatalf("run %s scheduled_for %s, want the hour %s", run.ID, run.ScheduledFor, due)
		}
		if at.Before(want) {
			t.Fatalf("run started %s before its jittered instant", want.Sub(at))
		}
		late = append(late, at.Sub(want))
	}
	slices.Sort(late)
	if len(late) != conns || late[len(late)-1] > 2*step {
		t.Fatalf("%d runs; latest %s after its jittered instant (want within %s)", len(late), late[len(late)-1], 2*step)
	}
}
