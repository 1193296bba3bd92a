package control_test

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/sdk/manifest"
)

const benchConnections = 10_000

// fakeCatalog holds one auth-less connector.
type fakeCatalog struct{ e catalog.Entry }

func (c fakeCatalog) Get(k string) (catalog.Entry, bool) { return c.e, k == c.e.Key }
func (c fakeCatalog) List() []catalog.Entry              { return []catalog.Entry{c.e} }

// discard is a schedule.Recorder that drops every tick: this benchmark
// measures enrollment; dispatch has its own (host/dispatch).
type discard struct{}

func (discard) Record(schedule.Tick) {}

func rssKiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return v
		}
	}
	return 0
}

// BenchmarkBootEnroll10k boots 10,000 connections with a schedule through
// the real store, gate and scheduler: boot-to-enrolled time, and Go heap
// and RSS after boot. (Dispatch of their occurrences is
// host/dispatch.BenchmarkDispatch10k.)
func BenchmarkBootEnroll10k(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m := manifest.Manifest{ConnectorKey: "bench", Version: "1", Auth: manifest.Auth{Kind: manifest.AuthNone},
		Streams: []manifest.Stream{{Name: "s", KeyFields: []string{"id"}}}}
	mj, _ := json.Marshal(m)
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: mj,
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchConnections; i++ {
		if _, err := st.CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench", Label: strconv.Itoa(i),
			Schedule: store.Schedule{Spec: "@every 5s"}}); err != nil {
			b.Fatal(err)
		}
	}
	cat := fakeCatalog{e: catalog.Entry{Key: "bench", Manifest: m}}
	for b.Loop() {
		sched, err := schedule.New(schedule.Config{}, discard{})
		if err != nil {
			b.Fatal(err)
		}
		br, _ := broker.New(broker.Config{Store: st})
		svc, err := control.New(control.Config{Store: st, Catalog: cat, Broker: br, Runner: noLaunch{}, Queue: noLaunch{}, Scheduler: sched,
			Gate: &enroll.Gate{Presence: broker.Presence{Store: st}, Manifests: control.Manifests{Catalog: cat}, CheckSpec: schedule.Check}})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		entries, err := svc.Boot(ctx)
		if err != nil || len(entries) != benchConnections {
			b.Fatal(err, len(entries))
		}
		sched.Start()
		boot := time.Since(t0)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(boot.Seconds(), "boot-s")
		b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc))/(1<<20), "heap-delta-MiB")
		b.ReportMetric(rssKiB()/1024, "rss-MiB")
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = sched.Shutdown(sctx)
		cancel()
	}
}

// noLaunch satisfies control.Checker and control.Queue; the benchmark
// never triggers runs.
type noLaunch struct{}

func (noLaunch) Enqueue(context.Context, string) (store.Run, error) { return store.Run{}, nil }
func (noLaunch) Check(context.Context, string) (runner.CheckResult, error) {
	return runner.CheckResult{}, nil
}
