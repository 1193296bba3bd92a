// Package compare is `make bench-compare` (command benchcompare):
// connhost's launch, whole-run, ingest and concurrency measures side by
// side with references built here — a bare go-plugin host and one-RPC plugin (the
// floor), a bare fork/exec, a same-schema C SQLite bulk load — each
// comparison interleaved round by round. It prints a table (median and
// min–max over rounds, and of the per-round ratios) and writes
// report.json, table.md and the hosts' logs into the output directory.
//
// Environment (all optional):
//
//	ROUNDS                    rounds of the launch and whole-run comparisons (default 5)
//	BENCH_LONG_ROUNDS         rounds of the long groups, ingest, concurrent and readme
//	                          (default ROUNDS, at most 3: an ingest round loads three
//	                          million records)
//	BENCH_OUT                 output directory (default: a new temp dir, printed)
//	BENCH_GROUPS              comma list of launch,run,ingest,concurrent,readme (default all)
//	BENCH_LAUNCHES            launches per variant per round (default 20)
//	BENCH_RUNS                whole manual runs per round (default 10)
//	BENCH_INGEST_RECORDS      records of an ingest run (default 1000000)
//	BENCH_CONCURRENT_RUNS     concurrent runs (default 100)
//	BENCH_CONCURRENT_RECORDS  records of each concurrent run (default 10000)
//	BENCH_MAX_CONCURRENT_RUNS the host's --max-concurrent-runs there (default BENCH_CONCURRENT_RUNS)
//	BENCH_PG                  PostgreSQL server URL for the ingest databases
//	                          (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
//	CC                        C compiler of the SQLite reference (default cc)
package compare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/connhost/connhost/host/internal/benchcompare/stats"
)

// settings are the knobs read from the environment.
type settings struct {
	rounds            int
	longRounds        int
	out               string
	groups            []string
	launches          int
	runs              int
	ingestRecords     int64
	concurrentRuns    int
	concurrentRecords int64
	maxConcurrentRuns int
	pgURL             string
	cc                string
}

// allGroups is the default order.
var allGroups = []string{"launch", "run", "ingest", "concurrent", "readme"}

// UsageError is a bad environment setting.
type UsageError struct{ Name, Value, Want string }

func (e *UsageError) Error() string {
	return fmt.Sprintf("%s=%q: want %s", e.Name, e.Value, e.Want)
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, &UsageError{name, v, "a positive integer"}
	}
	return n, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func readSettings() (settings, error) {
	var s settings
	var err error
	ints := []struct {
		name string
		def  int
		dst  *int
	}{
		{"ROUNDS", 5, &s.rounds}, {"BENCH_LAUNCHES", 20, &s.launches}, {"BENCH_RUNS", 10, &s.runs},
		{"BENCH_CONCURRENT_RUNS", 100, &s.concurrentRuns},
	}
	for _, i := range ints {
		if *i.dst, err = envInt(i.name, i.def); err != nil {
			return s, err
		}
	}
	if s.longRounds, err = envInt("BENCH_LONG_ROUNDS", min(s.rounds, 3)); err != nil {
		return s, err
	}
	if s.maxConcurrentRuns, err = envInt("BENCH_MAX_CONCURRENT_RUNS", s.concurrentRuns); err != nil {
		return s, err
	}
	n, err := envInt("BENCH_INGEST_RECORDS", 1_000_000)
	if err != nil {
		return s, err
	}
	s.ingestRecords = int64(n)
	if n, err = envInt("BENCH_CONCURRENT_RECORDS", 10_000); err != nil {
		return s, err
	}
	s.concurrentRecords = int64(n)
	s.out = os.Getenv("BENCH_OUT")
	s.pgURL = envOr("BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	s.cc = envOr("CC", "cc")
	s.groups = allGroups
	if g := os.Getenv("BENCH_GROUPS"); g != "" {
		s.groups = nil
		for _, name := range strings.Split(g, ",") {
			name = strings.TrimSpace(name)
			found := false
			for _, a := range allGroups {
				found = found || a == name
			}
			if !found {
				return s, &UsageError{"BENCH_GROUPS", g, "a comma list of " + strings.Join(allGroups, ",")}
			}
			s.groups = append(s.groups, name)
		}
	}
	return s, nil
}

func (s settings) has(group string) bool {
	for _, g := range s.groups {
		if g == group {
			return true
		}
	}
	return false
}

// progress prints one progress line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Run builds what it needs, runs the groups the environment selects and
// writes the report. It prints progress to stderr and the table to
// stdout; a failed group is reported and the others still run.
func Run(ctx context.Context) error {
	s, err := readSettings()
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if s.out == "" {
		if s.out, err = os.MkdirTemp("", "bench-compare-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(s.out, 0o755); err != nil {
		return err
	}
	s.out, _ = filepath.Abs(s.out)
	work, err := os.MkdirTemp("", "bcw-") // short: socket paths live under it
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	progress("bench-compare: %d rounds (%d of ingest, concurrent, readme), groups %s; output in %s",
		s.rounds, s.longRounds, strings.Join(s.groups, ","), s.out)

	started := time.Now()
	b, err := build(ctx, root, filepath.Join(work, "bin"), s)
	if err != nil {
		return err
	}
	if s.has("ingest") {
		if err := pgPreflight(ctx, s.pgURL); err != nil {
			return err
		}
	}

	rep := &stats.Report{
		Started: started.UTC().Format(time.RFC3339), Rounds: s.rounds, Commit: gitCommit(root),
		Machine: machine(), Settings: map[string]string{
			"groups": strings.Join(s.groups, ","), "long_rounds": strconv.Itoa(s.longRounds), "launches_per_round": strconv.Itoa(s.launches),
			"runs_per_round": strconv.Itoa(s.runs), "ingest_records": strconv.FormatInt(s.ingestRecords, 10),
			"concurrent_runs": strconv.Itoa(s.concurrentRuns), "concurrent_records": strconv.FormatInt(s.concurrentRecords, 10),
			"max_concurrent_runs": strconv.Itoa(s.maxConcurrentRuns), "go": runtime.Version(),
		},
	}
	env := &bench{s: s, b: b, work: work}
	groups := map[string]func(context.Context) ([]stats.Row, error){
		"launch": env.launchGroup, "run": env.wholeRunGroup, "ingest": env.ingestGroup,
		"concurrent": env.concurrentGroup, "readme": env.readmeGroup,
	}
	for _, g := range s.groups {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		progress("[%s] starting", g)
		rows, err := groups[g](ctx)
		rep.Rows = append(rep.Rows, rows...)
		if err != nil {
			progress("[%s] FAILED: %v", g, err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", g, err))
			continue
		}
		progress("[%s] done in %s", g, time.Since(t0).Round(time.Second))
	}
	rep.Finished = time.Now().UTC().Format(time.RFC3339)
	rep.Machine["loadavg_at_end"] = loadavg()

	var table strings.Builder
	fmt.Fprintf(&table, "bench-compare: commit %s, %d rounds (ingest, concurrent, readme: %d), %s cpus %s\nload average at start %s, at end %s\n\n",
		rep.Commit, s.rounds, s.longRounds, rep.Machine["cpus"], rep.Machine["cpu"], rep.Machine["loadavg_at_start"], rep.Machine["loadavg_at_end"])
	if err := stats.WriteTable(&table, rep.Rows); err != nil {
		return err
	}
	fmt.Print("\n" + table.String())
	werr := errors.Join(
		os.WriteFile(filepath.Join(s.out, "table.md"), []byte(table.String()), 0o644),
		writeJSON(filepath.Join(s.out, "report.json"), rep),
	)
	fmt.Printf("\nreport: %s/report.json, table: %s/table.md (total %s)\n", s.out, s.out, time.Since(started).Round(time.Second))
	if werr != nil {
		return werr
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d group(s) failed:\n  %s", len(rep.Errors), strings.Join(rep.Errors, "\n  "))
	}
	return ctx.Err()
}

func writeJSON(path string, rep *stats.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// bench is what every group shares.
type bench struct {
	s    settings
	b    binaries
	work string
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
