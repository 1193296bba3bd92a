package launch

import (
	"bufio"
	"context"
	"crypto/sha256"
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
	"github.com/connhost/connhost/host/pluginimage"
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
// message of plugins/demo, beside a bare fork/exec of the same binary
// running to exit (the demo exits at once when not started by a host).
// The launches go through an image pinned once, as a catalog entry's do:
// per launch, a stat of the binary. The *_copy modes launch a spec without
// an image, which hashes and copies the binary into a fresh memfd on every
// launch (what every launch did before images were pinned). Each mode runs
// with and without AutoMTLS. The modes are interleaved launch by launch,
// the order rotating each round, so a noisy machine weighs on all alike;
// each mode reports its p50/p99 of the first message (the fork/exec its
// exit) and of the whole Run call (full_, the graceful stop included), and
// the p50 ratio of its first message to the fork/exec.
func BenchmarkLaunch(b *testing.B) {
	const roundsPerOp = 100
	spec := demoSpec(b)
	spec.Image = pinned(b, spec.Path)
	copySpec := spec
	copySpec.Image = nil
	req := wire.RunRequest{RunID: "run-bench", ConnectionID: "conn-bench", Trigger: wire.TriggerManual, Config: json.RawMessage(`{"records":1}`)}
	launchers := map[bool]*Launcher{}
	for _, disable := range []bool{false, true} {
		l, err := New(Config{DisableAutoMTLS: disable, Logger: hclog.NewNullLogger()})
		if err != nil {
			b.Fatal(err)
		}
		launchers[disable] = l
	}
	type mode struct {
		name    string
		spec    Spec
		noMTLS  bool
		forkRun bool
	}
	modes := []mode{
		{name: "automtls", spec: spec}, {name: "automtls_copy", spec: copySpec},
		{name: "nomtls", spec: spec, noMTLS: true}, {name: "nomtls_copy", spec: copySpec, noMTLS: true},
		{name: "forkexec", forkRun: true},
	}
	first := map[string][]time.Duration{}
	full := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N * roundsPerOp {
		for j := range modes {
			m := modes[(i+j)%len(modes)]
			start := time.Now()
			if m.forkRun {
				cmd := exec.Command(spec.Path)
				cmd.Env = spec.Env
				if err := cmd.Run(); err == nil {
					b.Fatal("demo ran without a host")
				}
				first[m.name] = append(first[m.name], time.Since(start))
				continue
			}
			var f time.Duration
			err := launchers[m.noMTLS].Run(context.Background(), m.spec, req, func(wire.Message) error {
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
			first[m.name] = append(first[m.name], f)
			full[m.name] = append(full[m.name], time.Since(start))
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[len(s)/2].Microseconds()) / 1000
	}
	fork := p50(first["forkexec"])
	for _, m := range modes {
		if m.forkRun {
			reportLatency(b, m.name+"_exit_", first[m.name])
			continue
		}
		reportLatency(b, m.name+"_first_", first[m.name])
		reportLatency(b, m.name+"_full_", full[m.name])
		b.ReportMetric(p50(first[m.name])/fork, m.name+"/forkexec_p50")
	}
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

// BenchmarkPin measures pinning a binary (hashing it while copying it
// into a sealed memfd), which the catalog does once per binary per scan
// and a launch without an image does every time, beside hashing the file
// alone (what go-plugin's SecureConfig does before exec'ing the path it
// hashed) and beside what a launch of a pinned image pays instead: one
// Acquire, a stat of the binary.
func BenchmarkPin(b *testing.B) {
	const perOp = 200
	spec := demoSpec(b)
	st, err := os.Stat(spec.Path)
	if err != nil {
		b.Fatal(err)
	}
	mib := float64(st.Size()) / (1 << 20)
	b.Run("Pin", func(b *testing.B) {
		b.ReportMetric(mib, "binary_MiB")
		var d []time.Duration
		for range b.N {
			for range perOp {
				start := time.Now()
				im, err := pluginimage.Pin(spec.Path, pluginimage.Options{Want: spec.SHA256})
				if err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
				im.Close()
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
				f, err := os.Open(spec.Path)
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				h.Sum(nil)
				d = append(d, time.Since(start))
			}
		}
		reportLatency(b, "", d)
	})
	b.Run("Acquire", func(b *testing.B) {
		im := pinned(b, spec.Path)
		var d []time.Duration
		for range b.N {
			for range perOp {
				start := time.Now()
				l, err := im.Acquire()
				if err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
				l.Release()
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
