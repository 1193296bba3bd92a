package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/jonboulle/clockwork"
)

// The rig is one host with every real part — SQLite store, broker,
// runner, dispatcher, scheduler, control — except the plugin launcher,
// whose runs are fake work: these tests are about dispatch, and a real
// plugin per run would measure go-plugin instead. (The host's end-to-end
// tests run real plugins through the same dispatcher.)

const hostID = "host_rig"

// fakeCatalog holds one connector that needs no credential.
type fakeCatalog struct{ e catalog.Entry }

func (c fakeCatalog) Get(k string) (catalog.Entry, bool) { return c.e, k == c.e.Key }
func (c fakeCatalog) List() []catalog.Entry              { return []catalog.Entry{c.e} }

var benchManifest = manifest.Manifest{ConnectorKey: "bench", Version: "1", Auth: manifest.Auth{Kind: manifest.AuthNone},
	Streams: []manifest.Stream{{Name: "s", KeyFields: []string{"id"}}}}

// work is the fake launcher: every run takes Work (or what Fn says) and
// counts how many run at once.
type work struct {
	Work  time.Duration
	Fn    func(ctx context.Context, req wire.RunRequest) error
	Clock clockwork.Clock

	running atomic.Int64
	peak    atomic.Int64
	mu      sync.Mutex
	starts  map[string]time.Time // run id → clock at start
	runs    atomic.Int64
}

func (w *work) Run(ctx context.Context, _ launch.Spec, req wire.RunRequest, _ func(wire.Message) error) error {
	n := w.running.Add(1)
	defer w.running.Add(-1)
	for {
		p := w.peak.Load()
		if n <= p || w.peak.CompareAndSwap(p, n) {
			break
		}
	}
	w.runs.Add(1)
	if w.Clock != nil {
		w.mu.Lock()
		if w.starts == nil {
			w.starts = map[string]time.Time{}
		}
		w.starts[req.RunID] = w.Clock.Now()
		w.mu.Unlock()
	}
	if w.Fn != nil {
		return w.Fn(ctx, req)
	}
	select {
	case <-time.After(w.Work):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *work) Check(context.Context, launch.Spec, wire.CheckRequest) (wire.CheckResult, error) {
	return wire.CheckResult{Valid: true}, nil
}

func (w *work) startOf(runID string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.starts[runID]
	return t, ok
}

var _ runner.Launcher = (*work)(nil)

// ticks counts what the dispatcher reports.
type ticks struct {
	mu        sync.Mutex
	outcomes  map[store.TickOutcome]int
	coalesced int
	lags      []time.Duration
}

func (o *ticks) Ticks(out store.TickOutcome, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcomes == nil {
		o.outcomes = map[store.TickOutcome]int{}
	}
	o.outcomes[out] += n
}
func (o *ticks) Coalesced(n int) { o.mu.Lock(); o.coalesced += n; o.mu.Unlock() }
func (o *ticks) ObserveDispatchLag(_ string, d time.Duration) {
	o.mu.Lock()
	o.lags = append(o.lags, d)
	o.mu.Unlock()
}
func (o *ticks) WorkersBusy(int) {}

type rig struct {
	t       *testing.T
	dir     string
	store   *sqlite.Store
	work    *work
	obs     *ticks
	runner  *runner.Runner
	disp    *dispatch.Dispatcher
	sched   *schedule.Scheduler
	control *control.Service
	closed  bool
}

type rigOptions struct {
	Workers  int
	Prefetch int
	Clock    clockwork.Clock
	Retry    dispatch.RetryPolicy
	Work     *work
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mj, _ := json.Marshal(benchManifest)
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: mj,
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterHost(ctx, store.NewHost{ID: hostID}); err != nil {
		t.Fatal(err)
	}
	if o.Work == nil {
		o.Work = &work{Work: 10 * time.Millisecond}
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	cat := fakeCatalog{e: catalog.Entry{Key: "bench", Manifest: benchManifest, Path: "/bench"}}
	al := &audit.Log{Store: st}
	br, err := broker.New(broker.Config{Store: st, Audit: al})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dir: dir, store: st, work: o.Work, obs: &ticks{}}
	r.runner, err = runner.New(runner.Config{Store: st, Catalog: cat, Broker: br, Launcher: o.Work, HostID: hostID,
		Audit: al, Now: o.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r.disp, err = dispatch.New(dispatch.Config{Store: st, Launcher: r.runner.ForDispatch(), HostID: hostID,
		Workers: o.Workers, Prefetch: o.Prefetch, Clock: o.Clock, Retry: o.Retry, Observer: r.obs, Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	r.sched, err = schedule.New(schedule.Config{Clock: o.Clock}, r.disp)
	if err != nil {
		t.Fatal(err)
	}
	r.control, err = control.New(control.Config{Store: st, Catalog: cat, Broker: br, Runner: r.runner, Queue: r.disp,
		Scheduler: r.sched, Audit: al,
		Gate: &enroll.Gate{Presence: broker.Presence{Store: st}, Manifests: control.Manifests{Catalog: cat}, CheckSpec: schedule.Check}})
	if err != nil {
		t.Fatal(err)
	}
	r.sched.Start()
	r.disp.Start()
	t.Cleanup(r.shutdown)
	return r
}

// connections creates n connections on spec.
func (r *rig) connections(n int, spec string, jitter time.Duration) []store.Connection {
	r.t.Helper()
	out := make([]store.Connection, 0, n)
	for i := range n {
		c, e, err := r.control.CreateConnection(context.Background(), "operator", store.NewConnection{ConnectorKey: "bench",
			Label: fmt.Sprint(i), Schedule: store.Schedule{Spec: spec, Jitter: jitter}})
		if err != nil {
			r.t.Fatal(err)
		}
		if e.Outcome != enroll.Enrolled {
			r.t.Fatalf("connection %d not enrolled: %+v", i, e)
		}
		out = append(out, c)
	}
	return out
}

// shutdown is the server's shutdown order (SIGTERM).
func (r *rig) shutdown() {
	if r.closed {
		return
	}
	r.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.sched.Shutdown(ctx); err != nil {
		r.t.Errorf("scheduler shutdown: %v", err)
	}
	r.disp.Stop()
	if err := r.runner.Shutdown(ctx); err != nil {
		r.t.Errorf("runner shutdown: %v", err)
	}
	if err := r.disp.Wait(ctx); err != nil {
		r.t.Errorf("dispatch wait: %v", err)
	}
	if err := r.store.StopHost(ctx, hostID); err != nil {
		r.t.Errorf("stop host: %v", err)
	}
	_ = r.store.Close()
}

// openAgain opens the rig's store after shutdown closed it.
func openAgain(t *testing.T, r *rig) (*sqlite.Store, error) {
	t.Helper()
	return sqlite.Open(context.Background(), sqlite.Config{DataDir: r.dir})
}

// allRuns reads every run row.
func (r *rig) allRuns() []store.Run {
	r.t.Helper()
	var out []store.Run
	f := store.RunFilter{Limit: store.MaxPageSize}
	for {
		page, err := r.store.ListRuns(context.Background(), f)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, page.Runs...)
		if page.Next == "" {
			return out
		}
		f.Cursor = page.Next
	}
}

func (r *rig) occurrences(f store.OccurrenceFilter) []store.Occurrence {
	r.t.Helper()
	q, err := r.store.ListOccurrences(context.Background(), f)
	if err != nil {
		r.t.Fatal(err)
	}
	return q
}

func (r *rig) waitFor(d time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// retryable is a failure the runner classifies as retryable.
var retryable = &failure.Error{Code: failure.ConnectorFailed, Message: "upstream 503", Retryable: true}
