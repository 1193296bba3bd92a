package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
)

// benchConnections is the population the issue asks for.
const benchConnections = 10_000

type benchEnv struct {
	st  *sqlite.Store
	b   *Broker
	ids []string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Config{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ks, err := keysets.Create(ctx, keysets.Config{Path: filepath.Join(dir, "keyset.json"), KEK: keysets.Cleartext(), Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	br, err := New(Config{Store: st, Keyset: ks})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: "demo", Version: "1", Manifest: json.RawMessage(`{}`),
		Path: "/p", SHA256: strings.Repeat("ab", 32)}); err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{st: st, b: br}
	for i := 0; i < benchConnections; i++ {
		c, err := st.CreateConnection(ctx, store.NewConnection{ConnectorKey: "demo", Label: fmt.Sprint(i)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := br.Capture(ctx, Capture{ConnectionID: c.ID, Auth: demoAuth,
			Values: map[string]string{"DEMO_TOKEN": fmt.Sprintf("token-%032d", i)}}); err != nil {
			b.Fatal(err)
		}
		env.ids = append(env.ids, c.ID)
	}
	return env
}

// reportLatency adds p50/p99 metrics from per-op samples.
func reportLatency(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	q := func(p float64) float64 { return float64(samples[int(p*float64(len(samples)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
}

// BenchmarkResolve measures Resolve (SQLite read + AES-GCM decrypt + JSON)
// over 10,000 connections holding credentials, each iteration a random-ish
// connection. ops/s = 1e9 / ns/op.
func BenchmarkResolve(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	samples := make([]time.Duration, 0, 1<<16)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		id := env.ids[(i*7919)%len(env.ids)]
		i++
		t0 := time.Now()
		if _, err := env.b.Resolve(ctx, Target{ConnectionID: id, Auth: demoAuth}); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	reportLatency(b, samples)
}

// BenchmarkResolveParallel measures Resolve throughput from concurrent
// launches.
func BenchmarkResolveParallel(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := env.b.Resolve(ctx, Target{ConnectionID: env.ids[(i*7919)%len(env.ids)], Auth: demoAuth}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkPresence measures the presence-only eligibility check.
func BenchmarkPresence(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	p := Presence{Store: env.st}
	samples := make([]time.Duration, 0, 1<<16)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		ok, err := p.HasActiveCredential(ctx, env.ids[(i*7919)%len(env.ids)])
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
		samples = append(samples, time.Since(t0))
	}
	reportLatency(b, samples)
}
