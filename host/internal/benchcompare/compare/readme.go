package compare

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/connhost/connhost/host/internal/benchcompare/stats"
)

// GoBenchError is a Go benchmark that failed or printed no figure.
type GoBenchError struct {
	Bench  string
	Err    error
	Output string
}

func (e *GoBenchError) Error() string {
	out := strings.Split(strings.TrimSpace(e.Output), "\n")
	return fmt.Sprintf("go test -bench %s: %v\n%s", e.Bench, e.Err, strings.Join(out[max(0, len(out)-15):], "\n"))
}

func (e *GoBenchError) Unwrap() error { return e.Err }

// readmeGroup re-measures README "Measured" rows that have a Go
// benchmark and no pair: broker.Resolve and boot-to-enrolled, with -count
// ROUNDS, summarized over the counts.
func (e *bench) readmeGroup(ctx context.Context) ([]stats.Row, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	resolve, err := goBench(ctx, root, "./host/broker", "BenchmarkResolve", "", e.s.longRounds, "ns/op")
	if err != nil {
		return nil, err
	}
	for i := range resolve {
		resolve[i] /= 1000
	}
	progress("[readme] broker.Resolve: %v µs/op", resolve)
	boot, err := goBench(ctx, root, "./host/control", "BenchmarkBootEnroll10k", "1x", e.s.longRounds, "boot-s")
	if err != nil {
		return nil, err
	}
	progress("[readme] boot-to-enrolled: %v s", boot)
	const g = "readme"
	return rows(
		row(g, "broker.Resolve, SQLite, 10,000 credentials (go test -bench BenchmarkResolve)", stats.Micros, resolve, "", nil),
		row(g, "boot-to-enrolled, 10,000 connections (go test -bench BenchmarkBootEnroll10k)", stats.Seconds, boot, "", nil),
	)
}

// goBench runs one Go benchmark count times and returns the metric of
// each run.
func goBench(ctx context.Context, root, pkg, name, benchtime string, count int, metric string) ([]float64, error) {
	args := []string{"test", "-run", "^$", "-bench", "^" + name + "$", "-count", strconv.Itoa(count)}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, &GoBenchError{Bench: name, Err: err, Output: string(out)}
	}
	var vals []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], name) {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == metric {
				v, perr := strconv.ParseFloat(f[i], 64)
				if perr == nil {
					vals = append(vals, v)
				}
			}
		}
	}
	if len(vals) != count {
		return nil, &GoBenchError{Bench: name, Err: fmt.Errorf("%d %s figures, want %d", len(vals), metric, count), Output: string(out)}
	}
	return vals, nil
}
