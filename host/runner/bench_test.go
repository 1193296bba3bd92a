package runner_test

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
)

// BenchmarkIngest measures committed ingest through the whole runner:
// Launch of plugins/demo over go-plugin gRPC into the real SQLite store,
// from Launch to the final run row, each round on a fresh host and
// fresh connections. "1x1M" is one run of 1,000,000 records; "100x10k"
// is 100 runs of 10,000 records launched at once, with the host's RSS
// growth over the round (peak RSS during the round less RSS before it;
// the plugins are other processes).
func BenchmarkIngest(b *testing.B) {
	for _, tt := range []struct {
		name          string
		runs, records int
	}{
		{"1x1M", 1, 1_000_000},
		{"100x10k", 100, 10_000},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var total int64
			var elapsed time.Duration
			var growth int64
			var hostCPU, childCPU time.Duration
			for range b.N {
				b.StopTimer()
				h := hosttest.New(b, hosttest.Options{HostEnv: hostEnv(nil), AllowHostEnv: true})
				ids := make([]string, tt.runs)
				for i := range ids {
					c := h.CreateDemo(map[string]any{"records": tt.records, "token_sha256": sha(canary)}, "")
					h.SetToken(c.ID, canary)
					ids[i] = c.ID
				}
				resetPeakRSS(b)
				before := procStatus(b, "VmRSS")
				selfBefore, childBefore := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
				b.StartTimer()
				start := time.Now()
				var wg sync.WaitGroup
				runs := make([]store.Run, len(ids))
				errs := make([]error, len(ids))
				for i, id := range ids {
					wg.Add(1)
					go func() {
						defer wg.Done()
						hd, err := h.Runner.Launch(context.Background(), runner.Request{ConnectionID: id, Trigger: store.TriggerManual})
						if err != nil {
							errs[i] = err
							return
						}
						runs[i], errs[i] = hd.Result()
					}()
				}
				wg.Wait()
				elapsed += time.Since(start)
				b.StopTimer()
				hostCPU += cpuTime(syscall.RUSAGE_SELF) - selfBefore
				childCPU += cpuTime(syscall.RUSAGE_CHILDREN) - childBefore
				growth = max(growth, procStatus(b, "VmHWM")-before)
				for i, r := range runs {
					if errs[i] != nil || r.Records != int64(tt.records) {
						b.Fatalf("run %d: %d records, %v", i, r.Records, errs[i])
					}
					total += r.Records
				}
				h.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(growth)/(1<<20), "rss-growth-MB")
			// CPU per 1,000 records: the host's, and its reaped plugins'.
			b.ReportMetric(float64(hostCPU.Microseconds())/float64(total), "host-cpu-ms/krec")
			b.ReportMetric(float64(childCPU.Microseconds())/float64(total), "plugin-cpu-ms/krec")
		})
	}
}

// cpuTime returns the user and system CPU time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a kB field of /proc/self/status, in bytes.
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0+).
func resetPeakRSS(tb testing.TB) {
	tb.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Skipf("cannot reset the peak RSS: %v", err)
	}
}
