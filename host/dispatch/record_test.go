package dispatch_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/jonboulle/clockwork"
)

// instant runs every occurrence at once (or when block closes) and
// succeeds.
type instant struct {
	mu    sync.Mutex
	runs  []dispatch.Request
	block chan struct{}
}

func (i *instant) Run(_ context.Context, req dispatch.Request) dispatch.Outcome {
	i.mu.Lock()
	i.runs = append(i.runs, req)
	i.mu.Unlock()
	if i.block != nil {
		<-i.block
	}
	return dispatch.Outcome{RunID: "run_" + req.OccurrenceID, Status: store.RunSucceeded}
}

func (i *instant) Refuse(context.Context, string, error) (store.Run, error) { return store.Run{}, nil }

func (i *instant) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.runs)
}

// recordHost is a dispatcher on a shared store and fake clock.
type recordHost struct {
	disp   *dispatch.Dispatcher
	obs    *ticks
	work   *instant
	claims *claimCounter
}

// claimCounter counts ClaimDue calls.
type claimCounter struct {
	*sqlite.Store
	mu sync.Mutex
	n  int
}

func (c *claimCounter) ClaimDue(ctx context.Context, holder string, now time.Time, limit int) ([]store.Occurrence, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.ClaimDue(ctx, holder, now, limit)
}

func (c *claimCounter) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func newRecordHost(t *testing.T, st *sqlite.Store, fc *clockwork.FakeClock, id string, primary func(string) bool) *recordHost {
	t.Helper()
	if _, err := st.RegisterHost(context.Background(), store.NewHost{ID: id}); err != nil {
		t.Fatal(err)
	}
	h := &recordHost{obs: &ticks{}, work: &instant{}, claims: &claimCounter{Store: st}}
	var err error
	h.disp, err = dispatch.New(dispatch.Config{Store: h.claims, Launcher: h.work, HostID: id, Workers: 4, Clock: fc,
		Primary: primary, BackupDelay: 5 * time.Second, Observer: h.obs, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.disp.Stop()
		_ = h.disp.Wait(context.Background())
	})
	return h
}

func (h *recordHost) outcome(o store.TickOutcome) int {
	h.obs.mu.Lock()
	defer h.obs.mu.Unlock()
	return h.obs.outcomes[o]
}

func (h *recordHost) written() int {
	h.obs.mu.Lock()
	defer h.obs.mu.Unlock()
	n := 0
	for _, v := range h.obs.outcomes {
		n += v
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Hosts share out the recording: the primary of a connection records its
// ticks at once (claimed for its own workers), a backup BackupDelay later
// — a cheap duplicate while the primary lives, the recording when it is
// dead.
func TestBackupRecordsLate(t *testing.T) {
	t.Parallel()
	for name, primaryAlive := range map[string]bool{"primary alive": true, "primary dead": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st, fc := hosttest.FakeClockStore(t)
			c := newConnection(t, st)
			primary := newRecordHost(t, st, fc, "host_primary", func(string) bool { return true })
			backup := newRecordHost(t, st, fc, "host_backup", func(string) bool { return false })
			primary.disp.Start()
			backup.disp.Start()

			due := fc.Now()
			tick := schedule.Tick{ConnectionID: c.ID, DueAt: due, RunAt: due}
			backup.disp.Record(tick)
			if primaryAlive {
				primary.disp.Record(tick)
				waitUntil(t, "the primary records and runs it", func() bool { return primary.work.count() == 1 })
			}
			// The backup holds its tick while the delay runs.
			time.Sleep(100 * time.Millisecond)
			fc.Advance(4 * time.Second)
			time.Sleep(100 * time.Millisecond)
			if n := backup.written(); n != 0 {
				t.Fatalf("the backup wrote its tick before the delay (%d outcomes)", n)
			}
			fc.Advance(time.Second)
			if primaryAlive {
				waitUntil(t, "the backup's duplicate", func() bool { return backup.outcome(store.TickDuplicate) == 1 })
			} else {
				waitUntil(t, "the backup records and runs it", func() bool { return backup.work.count() == 1 })
				if backup.outcome(store.TickRecorded) != 1 {
					t.Fatalf("backup outcomes %v", backup.obs.outcomes)
				}
			}
			if n := primary.work.count() + backup.work.count(); n != 1 {
				t.Fatalf("the instant ran %d times", n)
			}
			// The recorder claimed it as it recorded it: no claim beyond
			// the claim loop's first look at Start.
			for _, h := range []*recordHost{primary, backup} {
				if n := h.claims.calls(); n > 1 {
					t.Errorf("%d claims, want the recorder's own", n)
				}
			}
		})
	}
}

// A host that becomes a connection's primary (the previous one died)
// writes what it held back as a backup first, then the new tick: the
// connection's instants are written in order, none made a duplicate by a
// later one.
func TestNewPrimaryWritesWhatItHeldBackFirst(t *testing.T) {
	t.Parallel()
	st, fc := hosttest.FakeClockStore(t)
	c := newConnection(t, st)
	var primary atomic.Bool
	h := newRecordHost(t, st, fc, "host_a", func(string) bool { return primary.Load() })
	h.work.block = make(chan struct{}) // the first run holds the connection
	t.Cleanup(func() { close(h.work.block) })
	h.disp.Start()
	base := fc.Now()
	for i := range 3 {
		if i == 2 {
			primary.Store(true)
		}
		due := base.Add(time.Duration(i) * time.Second)
		h.disp.Record(schedule.Tick{ConnectionID: c.ID, DueAt: due, RunAt: due})
	}
	waitUntil(t, "three ticks written", func() bool { return h.written() == 3 })
	if r, co, du := h.outcome(store.TickRecorded), h.outcome(store.TickCoalesced), h.outcome(store.TickDuplicate); r != 1 || co != 2 || du != 0 {
		t.Fatalf("recorded %d, coalesced %d, duplicate %d; want the first recorded and the others coalesced into it", r, co, du)
	}
	q, err := st.ListOccurrences(context.Background(), store.OccurrenceFilter{ConnectionID: c.ID})
	if err != nil || len(q) != 1 || !q[0].DueAt.Equal(base) {
		t.Fatalf("queue %+v, %v: want the first instant's occurrence", q, err)
	}
}

// A connection's buffer holds MaxBuffered ticks; the older ones it drops
// are counted as coalesced on the connection when the next is written,
// the same count the observer reports: never silently lost.
func TestDroppedTicksAreCountedOnTheConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, fc := hosttest.FakeClockStore(t)
	c := newConnection(t, st)
	h := newRecordHost(t, st, fc, "host_a", nil)
	const n = dispatch.MaxBuffered + 4
	base := fc.Now().Add(-n * time.Second)
	for i := range n {
		due := base.Add(time.Duration(i) * time.Second)
		h.disp.Record(schedule.Tick{ConnectionID: c.ID, DueAt: due, RunAt: due})
	}
	h.disp.Start() // the recorder runs only now: the buffer overflowed
	waitUntil(t, "the ticks written", func() bool { return h.outcome(store.TickRecorded) == 1 })
	got, err := st.GetConnection(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.obs.mu.Lock()
	observed := h.obs.coalesced
	h.obs.mu.Unlock()
	if got.CoalescedTicks != n-1 || observed != n-1 {
		t.Fatalf("coalesced: %d on the connection, %d observed, want %d", got.CoalescedTicks, observed, n-1)
	}
}

func newConnection(t *testing.T, st *sqlite.Store) store.Connection {
	t.Helper()
	ctx := context.Background()
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: []byte(`{}`),
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench", Label: "c"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
