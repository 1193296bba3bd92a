package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/connhost/connhost/host/internal/benchcompare/hostproc"
	"github.com/connhost/connhost/host/internal/benchcompare/stats"
)

// concurrentGroup: BENCH_CONCURRENT_RUNS connections of the demo, each run
// of BENCH_CONCURRENT_RECORDS records, triggered at once over HTTP on a
// fresh host (SQLite) each round: the aggregate rate from the first
// trigger to the last end, and the serve process's resident memory.
func (e *bench) concurrentGroup(ctx context.Context) ([]stats.Row, error) {
	var rate, peak, after, before []float64
	for r := range e.s.longRounds {
		res, err := e.concurrentRound(ctx)
		if err != nil {
			return nil, err
		}
		rate = append(rate, res.rate)
		before = append(before, res.before)
		peak = append(peak, res.peak-res.before)
		after = append(after, res.after-res.before)
		progress("[concurrent] round %d/%d: %d runs × %d records: %.1fk records/s, host RSS %.0f MiB before, +%.0f MiB peak, +%.0f MiB after",
			r+1, e.s.longRounds, e.s.concurrentRuns, e.s.concurrentRecords, res.rate/1000, res.before, res.peak-res.before, res.after-res.before)
	}
	const g = "concurrent"
	what := fmt.Sprintf("%d concurrent runs × %s records, SQLite", e.s.concurrentRuns, thousands(e.s.concurrentRecords))
	return rows(
		row(g, what+": aggregate records/s", stats.Rate, rate, "", nil).
			note(fmt.Sprintf("all triggered at once over HTTP on a fresh host with --max-concurrent-runs %d; from the first POST to the last run's end event", e.s.maxConcurrentRuns)),
		row(g, what+": host VmRSS before", stats.MiB, before, "", nil),
		row(g, what+": host RSS growth, peak (VmHWM − VmRSS before)", stats.MiB, peak, "", nil),
		row(g, what+": host RSS growth, after (VmRSS after − before)", stats.MiB, after, "", nil),
	)
}

type concurrentResult struct {
	rate                float64
	before, peak, after float64 // MiB
}

func (e *bench) concurrentRound(ctx context.Context) (_ concurrentResult, err error) {
	dir := filepath.Join(e.work, "concurrent")
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	h, err := hostproc.Start(ctx, hostproc.Config{
		Bin: e.b.connhost, PluginDir: e.b.pluginDir, DataDir: dir, MaxConcurrentRuns: e.s.maxConcurrentRuns,
		LogPath: filepath.Join(e.s.out, "serve-concurrent.log"),
	})
	if err != nil {
		return concurrentResult{}, err
	}
	defer func() {
		if serr := h.Stop(); err == nil {
			err = serr
		}
	}()
	ids := make([]string, e.s.concurrentRuns)
	for i := range ids {
		if ids[i], err = h.NewDemo(ctx, fmt.Sprintf("c-%d", i), e.s.concurrentRecords); err != nil {
			return concurrentResult{}, err
		}
	}
	// Let the setup's garbage settle before the baseline.
	time.Sleep(500 * time.Millisecond)
	m0, err := h.Memory()
	if err != nil {
		return concurrentResult{}, err
	}
	if err := h.ResetPeak(); err != nil {
		return concurrentResult{}, h.Fail("reset VmHWM", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	start := time.Now()
	gate := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-gate
			_, errs[i] = h.TriggerAndWait(ctx, id, e.s.concurrentRecords)
		})
	}
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return concurrentResult{}, err
	}
	m1, err := h.Memory()
	if err != nil {
		return concurrentResult{}, err
	}
	total := float64(e.s.concurrentRecords) * float64(len(ids))
	return concurrentResult{
		rate:   total / elapsed.Seconds(),
		before: float64(m0.RSSKiB) / 1024, peak: float64(m1.HWMKiB) / 1024, after: float64(m1.RSSKiB) / 1024,
	}, nil
}
