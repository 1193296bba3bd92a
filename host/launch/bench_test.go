package launch

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/contain"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// benchBuilds builds the benchmarks' binaries once per test binary, only
// when a benchmark asks for them.
var benchBuilds sync.Map // name → func() (string, error)

func benchBinary(b *testing.B, name, pkg string) string {
	b.Helper()
	f, _ := benchBuilds.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		out := filepath.Join(binDir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return "", &exec.Error{Name: string(msg), Err: err}
		}
		return out, nil
	}))
	path, err := f.(func() (string, error))()
	if err != nil {
		b.Fatalf("building %s: %v", pkg, err)
	}
	return path
}

// reportLatency reports the median and the 99th percentile in ms.
func reportLatency(b *testing.B, prefix string, d []time.Duration) {
	slices.Sort(d)
	q := func(p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), prefix+"p50_ms")
	b.ReportMetric(q(0.99), prefix+"p99_ms")
}

const benchToken = "bench-demo-token-51c2"

func demoSpec(b *testing.B) Spec {
	demo := benchBinary(b, "demo", "github.com/connhost/connhost/plugins/demo")
	return Spec{
		Name:   "demo",
		Path:   demo,
		SHA256: fileSum(b, demo),
		Env: BuildEnv(os.Environ(), EnvSpec{
			Allowlist: DefaultAllowlist, AuthRequired: []string{"DEMO_TOKEN"},
			Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": benchToken},
			ConnectionID: "conn-bench", RunID: "run-bench", Trigger: wire.TriggerManual,
		}),
		Secrets: []string{benchToken},
	}
}

// BenchmarkLaunch measures launch overhead: from the Run call to the first
// message of plugins/demo, over launchesPerOp launches per iteration, with
// and without AutoMTLS, beside a bare fork/exec of the same binary running
// to exit (the demo exits at once when not started by a host). Each
// launch includes the verified memfd copy of the binary. full_* is the
// whole Run call, including the graceful stop.
func BenchmarkLaunch(b *testing.B) {
	const launchesPerOp = 200
	spec := demoSpec(b)
	req := wire.RunRequest{RunID: "run-bench", ConnectionID: "conn-bench", Trigger: wire.TriggerManual, Config: json.RawMessage(`{"records":1}`)}

	for _, mode := range []struct {
		name    string
		disable bool
	}{{"AutoMTLS", false}, {"NoMTLS", true}} {
		b.Run(mode.name, func(b *testing.B) {
			l, err := New(Config{DisableAutoMTLS: mode.disable, Logger: hclog.NewNullLogger()})
			if err != nil {
				b.Fatal(err)
			}
			var first, full []time.Duration
			for range b.N {
				for range launchesPerOp {
					start := time.Now()
					var f time.Duration
					err := l.Run(context.Background(), spec, req, func(wire.Message) error {
						if f == 0 {
							f = time.Since(start)
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					if f == 0 {
						b.Fatal("run emitted no message")
					}
					first = append(first, f)
					full = append(full, time.Since(start))
				}
			}
			reportLatency(b, "first_msg_", first)
			reportLatency(b, "full_", full)
		})
	}

	b.Run("ForkExec", func(b *testing.B) {
		var d []time.Duration
		for range b.N {
			for range launchesPerOp {
				start := time.Now()
				cmd := exec.Command(spec.Path)
				cmd.Env = spec.Env
				if err := cmd.Run(); err == nil {
					b.Fatal("demo ran without a host")
				}
				d = append(d, time.Since(start))
			}
		}
		reportLatency(b, "exit_", d)
	})
}

// BenchmarkThroughput measures records per second from one run emitting
// recordsPerRun small records to a host-side counter: plugins/demo over
// go-plugin gRPC (AutoMTLS on), beside the same records written as JSON
// lines to a pipe and parsed by the host (Singer/Airbyte style; the record
// body stays raw JSON on both sides).
func BenchmarkThroughput(b *testing.B) {
	const recordsPerRun = 1_000_000

	b.Run("GoPluginGRPC", func(b *testing.B) {
		spec := demoSpec(b)
		l, err := New(Config{Logger: hclog.NewNullLogger()})
		if err != nil {
			b.Fatal(err)
		}
		req := wire.RunRequest{RunID: "run-bench", ConnectionID: "conn-bench", Trigger: wire.TriggerManual,
			Config: json.RawMessage(`{"records":` + strconv.Itoa(recordsPerRun) + `}`)}
		var total int
		var elapsed time.Duration
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			n := 0
			err := l.Run(context.Background(), spec, req, func(m wire.Message) error {
				n += len(m.Records)
				return nil
			})
			elapsed += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if n != recordsPerRun {
				b.Fatalf("%d records, want %d", n, recordsPerRun)
			}
			total += n
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
	})

	b.Run("JSONLinesPipe", func(b *testing.B) {
		bin := benchBinary(b, "jsonl", "./testdata/plugins/jsonl")
		type envelope struct {
			Type   string          `json:"type"`
			Stream string          `json:"stream"`
			Key    string          `json:"key"`
			Record json.RawMessage `json:"record"`
			Value  json.RawMessage `json:"value"`
		}
		var total int
		var elapsed time.Duration
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			cmd := exec.Command(bin, strconv.Itoa(recordsPerRun))
			out, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			n := 0
			for sc.Scan() {
				var m envelope
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					b.Fatal(err)
				}
				if m.Type == "RECORD" {
					n++
				}
			}
			if err := sc.Err(); err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			if n != recordsPerRun {
				b.Fatalf("%d records, want %d", n, recordsPerRun)
			}
			total += n
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
	})
}

// BenchmarkVerifiedCopy measures the part of each launch that makes the
// verified private copy (hash while copying into a sealed memfd) beside
// hashing the file alone, which is what go-plugin's SecureConfig does before
// exec'ing the path it hashed.
func BenchmarkVerifiedCopy(b *testing.B) {
	const perOp = 200
	spec := demoSpec(b)
	st, err := os.Stat(spec.Path)
	if err != nil {
		b.Fatal(err)
	}
	mib := float64(st.Size()) / (1 << 20)
	b.Run("MemfdCopy", func(b *testing.B) {
		b.ReportMetric(mib, "binary_MiB")
		var d []time.Duration
		for range b.N {
			for range perOp {
				start := time.Now()
				pe, err := newPrivateExec(spec.Path, spec.SHA256, "demo", "")
				if err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
				pe.close()
			}
		}
		reportLatency(b, "", d)
	})
	b.Run("HashOnly", func(b *testing.B) {
		b.ReportMetric(mib, "binary_MiB")
		var d []time.Duration
		for range b.N {
			for range perOp {
				start := time.Now()
				if _, err := copyHashed(io.Discard, spec.Path); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
			}
		}
		reportLatency(b, "", d)
	})
}

// BenchmarkContain measures what containment adds to a launch: one demo
// run (1 record) with no contain.Manager, with the /proc walk and with a
// cgroup per launch, interleaved launch by launch (the order rotating
// each round) so a noisy machine weighs on the three alike. It reports
// each mode's p50/p99 and the p50 ratios to the uncontained launch.
func BenchmarkContain(b *testing.B) {
	const roundsPerOp = 20
	spec := demoSpec(b)
	req := wire.RunRequest{RunID: "run-bench", ConnectionID: "conn-bench", Trigger: wire.TriggerManual, Config: json.RawMessage(`{"records":1}`)}
	dir, err := os.MkdirTemp("", "chb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	modes := []string{"none", "proc", "cgroup"}
	launchers := map[string]*Launcher{}
	for _, mode := range modes {
		cfg := Config{Logger: hclog.NewNullLogger(), TempDir: dir}
		if mode != "none" {
			m, err := contain.New(contain.Config{RuntimeDir: dir, DisableCgroup: mode == "proc"})
			if err != nil {
				b.Fatal(err)
			}
			if got, why := m.Mode(); string(got) != mode {
				b.Skipf("mode %s unavailable: %s", mode, why)
			}
			cfg.Contain = m
		}
		if launchers[mode], err = New(cfg); err != nil {
			b.Fatal(err)
		}
	}
	d := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N * roundsPerOp {
		for j := range modes {
			mode := modes[(i+j)%len(modes)]
			start := time.Now()
			if err := launchers[mode].Run(context.Background(), spec, req, func(wire.Message) error { return nil }); err != nil {
				b.Fatal(err)
			}
			d[mode] = append(d[mode], time.Since(start))
		}
	}
	b.StopTimer()
	p50 := map[string]float64{}
	for _, mode := range modes {
		s := slices.Clone(d[mode])
		slices.Sort(s)
		p50[mode] = float64(s[len(s)/2].Microseconds()) / 1000
		reportLatency(b, mode+"_", d[mode])
	}
	b.ReportMetric(p50["proc"]/p50["none"], "proc/none_p50")
	b.ReportMetric(p50["cgroup"]/p50["none"], "cgroup/none_p50")
}
