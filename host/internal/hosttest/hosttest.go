// Package hosttest assembles the whole host — real SQLite store, real Tink
// keyset, the catalog of a real plugin binary, broker, launcher, runner,
// scheduler on a fake clock, and the control service — for tests that
// prove the launch seam end to end. Plugins run as real go-plugin
// subprocesses.
package hosttest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
	"github.com/connhost/connhost/host/explain"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/internal/syncbuf"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/keysets"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
)

// DemoPackage is the import path of the demo connector.
const DemoPackage = "github.com/connhost/connhost/plugins/demo"

// Options configure a Host.
type Options struct {
	// HostEnv is the host environment the runner, broker and gate see
	// (nil: PATH and HOME only).
	HostEnv map[string]string
	// AllowHostEnv lets never-stored credentials come from HostEnv.
	AllowHostEnv bool
	// NoKeyset runs the host with no keyset loaded.
	NoKeyset bool
	// Retry is the dispatcher's retry policy (default 2 attempts, 1s).
	Retry dispatch.RetryPolicy
	// MaxConcurrent is the dispatcher's worker pool (default 8).
	MaxConcurrent uint
	// LeaseTTL is the runner's lease TTL (default 30s; renewed every
	// third of it, in real time).
	LeaseTTL time.Duration
	// DataDir reuses a data dir (a restart); "" makes a new one.
	DataDir string
	// Presence overrides the gate's Presence.
	Presence enroll.Presence
	// Plugins are extra connector packages to build and catalog, by
	// binary name (e.g. "github": "github.com/connhost/connhost/plugins/github").
	Plugins map[string]string
	// BackoffCap is the runner's backoff cap (default
	// runner.DefaultBackoffCap).
	BackoffCap time.Duration
	// Observer receives the dispatcher's measurements (tick outcomes).
	Observer dispatch.Observer
}

// Host is an assembled host.
type Host struct {
	T         testing.TB
	DataDir   string
	PluginDir string
	Logs      *SyncBuffer
	Logger    hclog.Logger
	Clock     *clockwork.FakeClock
	Store     *sqlite.Store
	Keyset    *keysets.Keyset
	KeysetCfg keysets.Config
	Catalog   *catalog.Catalog
	Broker    *broker.Broker
	Launcher  *CountingLauncher
	Runner    *runner.Runner
	Dispatch  *dispatch.Dispatcher
	Scheduler *schedule.Scheduler
	Control   *control.Service
	Gate      *enroll.Gate
	// Health derives connections' health as the server wires it.
	Health *health.Assessor
	// Explainer explains connections as the server wires it (presence
	// only: no keyset).
	Explainer *explain.Explainer

	hostEnv   []string
	closeOnce sync.Once
}

var (
	buildOnce sync.Map // pkg → binary path of the first build
)

// pluginCache holds the plugin binaries PluginBinary keeps for the life
// of a test binary, named by content, under the system's temp dir: one
// file per distinct build, shared by the test binaries that build it,
// instead of a new directory per test binary that nothing removes.
const pluginCache = "connhost-test-plugins"

// pluginCacheTTL is how long an unused cached binary stays: far longer
// than a test binary runs (a binary in use was written or touched when
// its test binary asked for it).
const pluginCacheTTL = 24 * time.Hour

var pruneOnce sync.Once

// PluginBinary builds pkg once per test binary and returns its path.
func PluginBinary(t testing.TB, pkg string) string {
	t.Helper()
	if p, ok := buildOnce.Load(pkg); ok {
		return p.(string)
	}
	// sdktest.Build writes into the caller's TempDir, removed when that
	// test ends; keep a stable copy.
	p := sdktest.Build(t, pkg)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), pluginCache)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pruneOnce.Do(func() { prunePlugins(dir, time.Now().Add(-pluginCacheTTL)) })
	sum := sha256.Sum256(b)
	dst := filepath.Join(dir, hex.EncodeToString(sum[:12])+"-"+filepath.Base(p))
	if err := keepPlugin(dst, b); err != nil {
		t.Fatal(err)
	}
	actual, _ := buildOnce.LoadOrStore(pkg, dst)
	return actual.(string)
}

// keepPlugin makes dst hold b: an existing file of that content name is
// touched (so pruning leaves it be); otherwise b is written beside it and
// renamed into place, so another test binary running dst is never
// written under.
func keepPlugin(dst string, b []byte) error {
	now := time.Now()
	if err := os.Chtimes(dst, now, now); err == nil {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o755)); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), dst)
}

// prunePlugins removes cached binaries not used since before.
func prunePlugins(dir string, before time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// New assembles a Host with the demo plugin catalogued.
func New(t testing.TB, o Options) *Host {
	t.Helper()
	ctx := context.Background()
	h := &Host{T: t, Logs: &SyncBuffer{}}
	h.Logger = hclog.New(&hclog.LoggerOptions{Output: h.Logs, Level: hclog.Debug, Name: "host"})
	h.DataDir = o.DataDir
	if h.DataDir == "" {
		h.DataDir = t.TempDir()
	}
	env := o.HostEnv
	if env == nil {
		env = map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")}
	}
	for k, v := range env {
		h.hostEnv = append(h.hostEnv, k+"="+v)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	h.PluginDir = filepath.Join(h.DataDir, "plugins")
	if err := os.MkdirAll(h.PluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	plugins := map[string]string{"demo": DemoPackage}
	for name, pkg := range o.Plugins {
		plugins[name] = pkg
	}
	for name, pkg := range plugins {
		dst := filepath.Join(h.PluginDir, name)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		b, err := os.ReadFile(PluginBinary(t, pkg))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	h.Clock = clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	// The store keeps time by the fake clock too: schedules are anchored
	// to a connection's creation time, read from the store.
	st, err := sqlite.Open(ctx, sqlite.Config{DataDir: h.DataDir, Now: h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.Store = st

	h.KeysetCfg = keysets.Config{Path: filepath.Join(h.DataDir, "keyset.json"), KEK: keysets.Cleartext(), Logger: h.Logger}
	if !o.NoKeyset {
		ks, err := keysets.Load(ctx, h.KeysetCfg)
		if err != nil {
			ks, err = keysets.Create(ctx, h.KeysetCfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		h.Keyset = ks
	}

	l, err := launch.New(launch.Config{Logger: h.Logger.Named("launch"), Environ: func() []string { return h.hostEnv }})
	if err != nil {
		t.Fatal(err)
	}
	h.Launcher = &CountingLauncher{L: l}
	cat, errs := catalog.Scan(ctx, h.PluginDir, l, catalog.Options{CheckSchedule: schedule.Check, Logger: h.Logger})
	if len(errs) > 0 {
		t.Fatalf("catalog: %v", errs)
	}
	h.Catalog = cat
	for _, e := range cat.List() {
		mj, _ := json.Marshal(e.Manifest)
		if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: e.Key, Version: e.Manifest.Version,
			Manifest: mj, Path: e.Path, SHA256: hex.EncodeToString(e.SHA256)}); err != nil {
			t.Fatal(err)
		}
	}
	al := &audit.Log{Store: st, Logger: h.Logger}
	bcfg := broker.Config{Store: st, HostEnv: lookup, AllowHostEnv: o.AllowHostEnv, Audit: al, Logger: h.Logger}
	if h.Keyset != nil {
		bcfg.Keyset = h.Keyset
	}
	h.Broker, err = broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Runner, err = runner.New(runner.Config{
		Store: st, Catalog: cat, Broker: h.Broker, Launcher: h.Launcher, HostID: "host_test",
		HostEnv: func() []string { return h.hostEnv }, RunTimeout: time.Minute, LeaseTTL: cmp.Or(o.LeaseTTL, 30*time.Second),
		Audit: al, Logger: h.Logger.Named("runner"), Now: h.Clock.Now, BackoffCap: o.BackoffCap,
		// As the server does: a run that holds its connection re-evaluates
		// it (h.Control is set before any run can start).
		OnHold: func(ctx context.Context, id string) { h.Control.Reevaluate(ctx, id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	retry := o.Retry
	if retry.MaxAttempts == 0 {
		retry = dispatch.RetryPolicy{MaxAttempts: 2, Base: time.Second, Max: time.Second}
	}
	mc := o.MaxConcurrent
	if mc == 0 {
		mc = 8
	}
	if _, err := st.RegisterHost(ctx, store.NewHost{ID: "host_test"}); err != nil {
		t.Fatal(err)
	}
	h.Dispatch, err = dispatch.New(dispatch.Config{Store: st, Launcher: h.Runner.ForDispatch(), HostID: "host_test",
		Workers: int(mc), Clock: h.Clock, Retry: retry, Logger: h.Logger.Named("dispatch"), Rand: func() float64 { return 0 },
		Observer: o.Observer})
	if err != nil {
		t.Fatal(err)
	}
	h.Scheduler, err = schedule.New(schedule.Config{Clock: h.Clock, Logger: h.Logger.Named("schedule")}, h.Dispatch)
	if err != nil {
		t.Fatal(err)
	}
	presence := o.Presence
	if presence == nil {
		bp := broker.Presence{Store: st}
		if h.Keyset != nil {
			bp.Keys = h.Keyset
		}
		presence = bp
	}
	h.Gate = &enroll.Gate{Presence: presence, Manifests: control.Manifests{Catalog: cat}, HostEnv: lookup,
		AllowHostEnv: o.AllowHostEnv, CheckSpec: schedule.Check}
	h.Health = &health.Assessor{Manifests: control.Manifests{Catalog: cat}, Credentials: st, HostEnv: lookup,
		AllowHostEnv: o.AllowHostEnv, KeyHeld: func(id uint32) bool { return h.Keyset != nil && h.Keyset.Info().Holds(id) }}
	manifests := control.Manifests{Catalog: cat}
	predictor := broker.Predictor{Credentials: st, HostEnv: lookup, AllowHostEnv: o.AllowHostEnv}
	if h.Keyset != nil {
		predictor.Keys = h.Keyset
	}
	h.Explainer, err = explain.New(explain.Config{Store: st, Manifests: manifests, Gate: h.Gate, Health: h.Health,
		Predictor: predictor, HostEnv: func() []string { return h.hostEnv }})
	if err != nil {
		t.Fatal(err)
	}
	h.Control, err = control.New(control.Config{Store: st, Catalog: cat, Broker: h.Broker, Runner: h.Runner,
		Queue: h.Dispatch, Scheduler: h.Scheduler, Gate: h.Gate, Audit: al, Logger: h.Logger})
	if err != nil {
		t.Fatal(err)
	}
	h.Scheduler.Start()
	h.Dispatch.Start()
	t.Cleanup(h.Close)
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("HOSTTEST_LOGS") != "" {
			t.Logf("host log:\n%s", h.Logs.String())
		}
	})
	return h
}

// Close shuts the host down as the server does: scheduler, dispatch
// (hand the work back), runner, store.
func (h *Host) Close() {
	h.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = h.Scheduler.Shutdown(ctx)
		h.Dispatch.Stop()
		_ = h.Runner.Shutdown(ctx)
		_ = h.Dispatch.Wait(ctx)
		_ = h.Store.StopHost(ctx, "host_test")
		_ = h.Store.Close()
	})
}

// Trigger queues a manual run through the control service, as the API
// does: the queued run, or the refused run and its typed failure.
func (h *Host) Trigger(connID string) (store.Run, error) {
	return h.Control.TriggerRun(context.Background(), "operator", connID)
}

// Wait waits (bounded) for the run to end and returns its final row and,
// unless it succeeded, its failure as a *failure.Error.
func (h *Host) Wait(runID string) (store.Run, error) {
	h.T.Helper()
	ch, unsubscribe := h.Runner.Events().Subscribe(runID)
	defer unsubscribe()
	deadline := time.After(2 * time.Minute)
	for {
		run, err := h.Store.GetRun(context.Background(), runID)
		if err != nil {
			h.T.Fatalf("wait for run %s: %v", runID, err)
		}
		if run.Status.Terminal() {
			if run.Status == store.RunSucceeded {
				return run, nil
			}
			return run, &failure.Error{Code: run.FailureCode, Message: run.FailureMessage}
		}
		select {
		case <-ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			h.T.Fatalf("run %s did not end within 2m (status %s)", runID, run.Status)
		}
	}
}

// Queue waits (bounded) until no worker holds the connection's occurrence
// — the last run's completion is written — and returns what is queued.
func (h *Host) Queue(connID string) []store.Occurrence {
	h.T.Helper()
	var q []store.Occurrence
	h.WaitFor(30*time.Second, func() bool {
		var err error
		q, err = h.Store.ListOccurrences(context.Background(), store.OccurrenceFilter{ConnectionID: connID})
		if err != nil {
			h.T.Fatal(err)
		}
		return len(q) == 0 || q[0].State == store.OccurrencePending
	})
	return q
}

// RunNow triggers a manual run and waits for its end; a refusal at the
// trigger returns the refused row and its error at once.
func (h *Host) RunNow(connID string) (store.Run, error) {
	h.T.Helper()
	run, err := h.Trigger(connID)
	if err != nil {
		return run, err
	}
	return h.Wait(run.ID)
}

// CreateDemo creates a demo connection with config and schedule.
func (h *Host) CreateDemo(config any, spec string) store.Connection {
	h.T.Helper()
	cfg, err := json.Marshal(config)
	if err != nil {
		h.T.Fatal(err)
	}
	c, _, err := h.Control.CreateConnection(context.Background(), "operator",
		store.NewConnection{ConnectorKey: "demo", Label: "demo", Config: cfg, Schedule: store.Schedule{Spec: spec}})
	if err != nil {
		h.T.Fatal(err)
	}
	return c
}

// SetToken captures DEMO_TOKEN for the connection.
func (h *Host) SetToken(connID, token string) {
	h.T.Helper()
	if _, err := h.Control.SetCredential(context.Background(), "operator", connID, map[string]string{"DEMO_TOKEN": token}, nil); err != nil {
		h.T.Fatal(err)
	}
}

// Runs returns the connection's runs, oldest first.
func (h *Host) Runs(connID string) []store.Run {
	h.T.Helper()
	page, err := h.Store.ListRuns(context.Background(), store.RunFilter{ConnectionID: connID, Limit: 500})
	if err != nil {
		h.T.Fatal(err)
	}
	out := make([]store.Run, len(page.Runs))
	for i, r := range page.Runs {
		out[len(out)-1-i] = r
	}
	return out
}

// Finished returns the connection's terminal runs, oldest first.
func (h *Host) Finished(connID string) []store.Run {
	var out []store.Run
	for _, r := range h.Runs(connID) {
		if r.Status.Terminal() {
			out = append(out, r)
		}
	}
	return out
}

// AdvanceUntil moves the fake clock by step until cond holds, waiting in
// real time between steps for subprocess runs (bounded by maxWait).
func (h *Host) AdvanceUntil(step time.Duration, maxWait time.Duration, cond func() bool) {
	h.T.Helper()
	deadline := time.Now().Add(maxWait)
	for !cond() {
		if time.Now().After(deadline) {
			h.T.Fatalf("condition not met within %s of real time (fake clock at %s)", maxWait, h.Clock.Now().Format(time.RFC3339))
		}
		h.Clock.Advance(step)
		wait := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(wait) && !cond() {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// WaitFor polls cond in real time.
func (h *Host) WaitFor(maxWait time.Duration, cond func() bool) {
	h.T.Helper()
	deadline := time.Now().Add(maxWait)
	for !cond() {
		if time.Now().After(deadline) {
			h.T.Fatalf("condition not met within %s", maxWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// EnvRecords returns the demo's "env" stream records of the connection as
// name → record.
func (h *Host) EnvRecords(connID string) map[string]EnvRecord {
	h.T.Helper()
	page, err := h.Store.ListRecords(context.Background(), store.RecordQuery{ConnectionID: connID, Stream: "env", Limit: 500})
	if err != nil {
		h.T.Fatal(err)
	}
	out := map[string]EnvRecord{}
	for _, r := range page.Records {
		var e EnvRecord
		if err := json.Unmarshal(r.Data, &e); err != nil {
			h.T.Fatal(err)
		}
		out[e.Name] = e
	}
	return out
}

// EnvRecord is the demo's echo of one env name.
type EnvRecord struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
	SHA256  string `json:"sha256"`
}

// CountingLauncher counts child launches: the runner's only way to spawn.
type CountingLauncher struct {
	L     *launch.Launcher
	count atomic.Int64
}

// Run counts and delegates.
func (c *CountingLauncher) Run(ctx context.Context, spec launch.Spec, req wire.RunRequest, emit func(wire.Message) error) error {
	c.count.Add(1)
	return c.L.Run(ctx, spec, req, emit)
}

// Check counts and delegates.
func (c *CountingLauncher) Check(ctx context.Context, spec launch.Spec, req wire.CheckRequest) (wire.CheckResult, error) {
	c.count.Add(1)
	return c.L.Check(ctx, spec, req)
}

// Launches returns how many children were started.
func (c *CountingLauncher) Launches() int64 { return c.count.Load() }

var _ runner.Launcher = (*CountingLauncher)(nil)

// SyncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type SyncBuffer = syncbuf.Buffer

// FakeClockStore is a real SQLite store in a temp dir keeping time by a
// fake clock set to 2026-01-01 UTC, closed when the test ends.
func FakeClockStore(t testing.TB) (*sqlite.Store, *clockwork.FakeClock) {
	t.Helper()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(context.Background(), sqlite.Config{DataDir: t.TempDir(), Now: fc.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, fc
}
