package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connhost/connhost/host/cluster"
	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/postgres"
	"github.com/connhost/connhost/host/store/sqlite"
)

// BenchmarkDispatch10k: 10,000 connections on one host over SQLite and
// on three hosts over one PostgreSQL database (three dispatchers, each
// with its own pool, bus connection and scheduler, in this process), with
// 64 workers per host and 1 ms of fake work per run. Three shapes: every
// connection due at one instant; due instants spread evenly over a
// minute; due at one instant with 60 s of jitter. Reported: time from the
// instant to the last run started (dispatch-all-s, for the instant), the
// dispatch lag (run_at to a worker) p50/p99, runs outside their jitter
// window, store statements per occurrence across hosts, Go heap and RSS.
//
//	go test -run '^$' -bench Dispatch10k -benchtime 1x -count 5 ./host/dispatch/
//
// BENCH_TRACE=1 prints progress, slow store calls and late runs on
// stderr; BENCH_CPUPROFILE=file profiles the dispatch phase only;
// BENCH_HOSTS=1,2,3 picks the host counts.
func BenchmarkDispatch10k(b *testing.B) {
	for _, hosts := range benchHosts() {
		for _, shape := range []string{"at-once", "spread-1m", "jitter-60s"} {
			name := fmt.Sprintf("sqlite-1host/%s", shape)
			if usePostgres(hosts) {
				name = fmt.Sprintf("postgres-%dhosts/%s", hosts, shape)
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					benchDispatch(b, hosts, shape)
				}
			})
		}
	}
}

const (
	benchConns   = 10_000
	benchWorkers = 64
)

// benchWork is 1 ms of fake work per run.
type benchWork struct {
	n    atomic.Int64
	last atomic.Int64 // unix nanos of the latest start
	done chan struct{}
}

func (w *benchWork) Run(_ context.Context, _ dispatch.Request) dispatch.Outcome {
	w.last.Store(time.Now().UnixNano())
	time.Sleep(time.Millisecond)
	if w.n.Add(1) == benchConns {
		close(w.done)
	}
	return dispatch.Outcome{RunID: "run_bench", Status: store.RunSucceeded}
}

func (w *benchWork) Refuse(context.Context, string, error) (store.Run, error) {
	return store.Run{}, nil
}

// lagObserver keeps every dispatch lag.
type lagObserver struct {
	mu         sync.Mutex
	lags       []time.Duration
	recorded   atomic.Int64
	lastRecord atomic.Int64
}

func (o *lagObserver) Ticks(out store.TickOutcome, n int) {
	if out == store.TickRecorded {
		o.recorded.Add(int64(n))
		o.lastRecord.Store(time.Now().UnixNano())
	}
}
func (o *lagObserver) Coalesced(int) {}
func (o *lagObserver) ObserveDispatchLag(_ string, d time.Duration) {
	if d > 50*time.Millisecond && os.Getenv("BENCH_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "%s lag %s\n", time.Now().Format("15:04:05.000"), d.Round(time.Millisecond))
	}
	o.mu.Lock()
	o.lags = append(o.lags, d)
	o.mu.Unlock()
}
func (o *lagObserver) WorkersBusy(int) {}

type benchStore interface {
	dispatch.Store
	store.Store
	Statements() uint64
}

type benchHost struct {
	ts    *timedStore
	st    benchStore
	bus   *notify.Postgres
	disp  *dispatch.Dispatcher
	sched *schedule.Scheduler
}

func benchDispatch(b *testing.B, hosts int, shape string) {
	ctx := context.Background()
	work := &benchWork{done: make(chan struct{})}
	obs := &lagObserver{}
	var stores []benchStore
	if !usePostgres(hosts) {
		st, err := sqlite.Open(ctx, sqlite.Config{DataDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		stores = append(stores, st)
	} else {
		url := pgtest.Schema(b)
		for range hosts {
			st, err := postgres.Open(ctx, postgres.Config{URL: url, MaxConns: 16})
			if err != nil {
				b.Fatal(err)
			}
			stores = append(stores, st)
		}
	}
	defer func() {
		for _, st := range stores {
			_ = st.Close()
		}
	}()
	mj, _ := json.Marshal(benchManifest)
	if _, err := stores[0].UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: mj,
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, benchConns)
	for i := range ids {
		c, err := stores[0].CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench", Label: strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = c.ID
	}

	var hs []*benchHost
	var hostIDs []string
	for i := range stores {
		hostIDs = append(hostIDs, fmt.Sprintf("host_bench_%d", i))
	}
	for i, st := range stores {
		id := fmt.Sprintf("host_bench_%d", i)
		if _, err := st.RegisterHost(ctx, store.NewHost{ID: id}); err != nil {
			b.Fatal(err)
		}
		ts := &timedStore{benchStore: st}
		h := &benchHost{st: st, ts: ts}
		var bus notify.Bus = notify.None{}
		if pg, ok := st.(*postgres.Store); ok {
			nb, err := notify.NewPostgres(notify.PostgresConfig{Origin: id, DB: pg.DB(), Conn: pg.ConnConfig(), Namespace: pg.Schema()})
			if err != nil {
				b.Fatal(err)
			}
			h.bus, bus = nb, nb
		}
		dcfg := dispatch.Config{Store: ts, Launcher: work, HostID: id, Workers: benchWorkers, Bus: bus, Observer: obs,
			BatchSize: benchBatch(), Prefetch: benchPrefetch(hosts)}
		if len(stores) > 1 {
			// As the server wires it: the hosts share out the recording.
			dcfg.Primary = func(conn string) bool { return cluster.Owner(hostIDs, conn) == id }
		}
		var err error
		h.disp, err = dispatch.New(dcfg)
		if err != nil {
			b.Fatal(err)
		}
		if h.sched, err = schedule.New(schedule.Config{}, h.disp); err != nil {
			b.Fatal(err)
		}
		if h.bus != nil {
			if err := h.bus.Start(ctx); err != nil {
				b.Fatal(err)
			}
		}
		hs = append(hs, h)
	}

	// Every host enrolls every connection. The instant is a few seconds
	// ahead, past the enrollment.
	due := time.Now().Add(time.Duration(3*hosts+3) * time.Second).Truncate(time.Second)
	jitter := time.Duration(0)
	if shape == "jitter-60s" {
		jitter = time.Minute
	}
	for _, h := range hs {
		for i, id := range ids {
			anchor := due
			if shape == "spread-1m" {
				anchor = due.Add(time.Duration(i) * time.Minute / benchConns)
			}
			if err := h.sched.Upsert(schedule.Job{ConnectionID: id, Spec: "@every 1h", Jitter: jitter, Anchor: anchor}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if time.Now().After(due) {
		b.Fatalf("enrollment overran the due instant by %s", time.Since(due))
	}
	runtime.GC()
	var statements uint64
	for _, h := range hs {
		statements -= h.st.Statements()
		h.sched.Start()
		h.disp.Start()
	}
	if f := os.Getenv("BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Until(due))
		_ = pprof.StartCPUProfile(out)
		defer func() { pprof.StopCPUProfile(); out.Close() }()
	}
	if os.Getenv("BENCH_TRACE") != "" {
		go func() {
			for {
				select {
				case <-work.done:
					return
				case <-time.After(100 * time.Millisecond):
					fmt.Fprintf(os.Stderr, "%6s recorded %5d started %5d\n", time.Since(due).Round(10*time.Millisecond), obs.recorded.Load(), work.n.Load())
				}
			}
		}()
	}
	select {
	case <-work.done:
	case <-time.After(3 * time.Minute):
		b.Fatalf("%d of %d runs after 3 minutes", work.n.Load(), benchConns)
	}
	last := time.Unix(0, work.last.Load())
	for _, h := range hs {
		statements += h.st.Statements()
	}
	if os.Getenv("BENCH_TRACE") != "" {
		for _, h := range hs {
			h.ts.report()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := rssMiB()
	for _, h := range hs {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = h.sched.Shutdown(sctx)
		h.disp.Stop()
		_ = h.disp.Wait(sctx)
		cancel()
		if h.bus != nil {
			_ = h.bus.Close()
		}
	}

	obs.mu.Lock()
	lags := slices.Clone(obs.lags)
	obs.mu.Unlock()
	slices.Sort(lags)
	outside := 0
	if jitter > 0 {
		// run_at is inside the window by construction; a run is outside
		// its window when it started after the window closed.
		for _, l := range lags {
			if l > jitter {
				outside++
			}
		}
	}
	if shape == "at-once" {
		b.ReportMetric(last.Sub(due).Seconds(), "dispatch-all-s")
		b.ReportMetric(time.Unix(0, obs.lastRecord.Load()).Sub(due).Seconds(), "recorded-all-s")
	}
	b.ReportMetric(ms2(lags[len(lags)/2]), "lag-p50-ms")
	b.ReportMetric(ms2(lags[len(lags)*99/100]), "lag-p99-ms")
	b.ReportMetric(ms2(lags[len(lags)-1]), "lag-max-ms")
	if jitter > 0 {
		b.ReportMetric(float64(outside), "outside-window")
	}
	b.ReportMetric(float64(statements)/benchConns, "stmts/occurrence")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(rss, "rss-MiB")
}

func ms2(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return v / 1024
		}
	}
	return 0
}

func benchBatch() int {
	n, _ := strconv.Atoi(os.Getenv("BENCH_BATCH"))
	return n
}

// usePostgres: more than one host, or BENCH_BACKEND=postgres.
func usePostgres(hosts int) bool { return hosts > 1 || os.Getenv("BENCH_BACKEND") == "postgres" }

// benchPrefetch is what the server configures: the pool size on a store
// the host owns alone, none on a shared one.
func benchPrefetch(hosts int) int {
	if v := os.Getenv("BENCH_PREFETCH"); v != "" {
		n, _ := strconv.Atoi(v)
		return n
	}
	if !usePostgres(hosts) {
		return dispatch.PrefetchAll
	}
	return 0
}

// benchHosts: one host (SQLite) and three (PostgreSQL); BENCH_HOSTS=1,2,3
// overrides, with every count above one on PostgreSQL.
func benchHosts() []int {
	v := os.Getenv("BENCH_HOSTS")
	if v == "" {
		return []int{1, 3}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}
