package compare

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/connhost/connhost/host/internal/benchcompare/hostproc"
	"github.com/connhost/connhost/host/internal/benchcompare/stats"
	"github.com/jackc/pgx/v5"
)

// sqliteFile is the store file of a host's data dir (package sqlite's
// FileName).
const sqliteFile = "connhost.db"

// ingestResult is one ingest of the demo's records.
type ingestResult struct {
	rate  float64 // records per second
	bytes float64 // on disk after the run
}

// ingestGroup: one run of BENCH_INGEST_RECORDS demo records, HTTP POST →
// final row, on SQLite and on PostgreSQL (each on a fresh host and an
// empty store), beside the C SQLite reference loading the same rows into
// the same schema. The three rotate their order each round.
func (e *bench) ingestGroup(ctx context.Context) ([]stats.Row, error) {
	vs := []struct {
		name string
		run  func(ctx context.Context, round int) (ingestResult, error)
	}{
		{"sqlite", e.ingestSQLite},
		{"ref", e.ingestRef},
		{"postgres", e.ingestPostgres},
	}
	res := map[string][]ingestResult{}
	for r := range e.s.longRounds {
		for j := range vs {
			v := vs[(r+j)%len(vs)]
			out, err := v.run(ctx, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			res[v.name] = append(res[v.name], out)
			progress("[ingest] round %d/%d: %-8s %7.1fk records/s, %.1f MB on disk", r+1, e.s.longRounds, v.name, out.rate/1000, out.bytes/1e6)
		}
	}
	get := func(name string, f func(ingestResult) float64) []float64 {
		var out []float64
		for _, r := range res[name] {
			out = append(out, f(r))
		}
		return out
	}
	rate := func(r ingestResult) float64 { return r.rate }
	// Bytes per million records, whatever BENCH_INGEST_RECORDS is.
	size := func(r ingestResult) float64 { return r.bytes * 1e6 / float64(e.s.ingestRecords) }
	const g = "ingest"
	n := thousands(e.s.ingestRecords)
	return rows(
		row(g, "ingest "+n+" demo records, SQLite: POST → final row (higher is better)", stats.Rate, get("sqlite", rate), "C SQLite", get("ref", rate)).
			note("C SQLite: host/internal/benchcompare/sqliteref/ref.c, the same rows upserted into the records schema of ada1a29 with connhost's pragmas (WAL, synchronous=FULL, foreign_keys, secure_delete), one prepared statement, 1,000 rows per transaction, one process; timed from exec to exit"),
		row(g, "ingest "+n+" demo records, PostgreSQL: POST → final row (higher is better)", stats.Rate, get("postgres", rate), "C SQLite", get("ref", rate)),
		row(g, "ingest, PostgreSQL against connhost on SQLite (higher is better)", stats.Rate, get("postgres", rate), "connhost SQLite", get("sqlite", rate)),
		row(g, "bytes on disk per 1M records, SQLite (db + wal)", stats.Bytes, get("sqlite", size), "C SQLite", get("ref", size)),
		row(g, "bytes on disk per 1M records, PostgreSQL (records table, indexes, TOAST)", stats.Bytes, get("postgres", size), "C SQLite", get("ref", size)),
	)
}

// ingestHost runs one ingest on a fresh host.
func (e *bench) ingestHost(ctx context.Context, name, store string) (ingestResult, func() error, error) {
	dir := filepath.Join(e.work, "ingest-"+name)
	_ = os.RemoveAll(dir)
	h, err := hostproc.Start(ctx, hostproc.Config{
		Bin: e.b.connhost, PluginDir: e.b.pluginDir, DataDir: dir, Store: store,
		LogPath: filepath.Join(e.s.out, "serve-ingest-"+name+".log"),
	})
	if err != nil {
		return ingestResult{}, nil, err
	}
	done := func() error {
		err := h.Stop()
		return errors.Join(err, os.RemoveAll(dir))
	}
	id, err := h.NewDemo(ctx, "ingest", e.s.ingestRecords)
	if err != nil {
		return ingestResult{}, nil, errors.Join(err, done())
	}
	run, err := h.TriggerAndWait(ctx, id, e.s.ingestRecords)
	if err != nil {
		return ingestResult{}, nil, errors.Join(err, done())
	}
	return ingestResult{rate: float64(e.s.ingestRecords) / run.Elapsed.Seconds()}, done, nil
}

func (e *bench) ingestSQLite(ctx context.Context, _ int) (ingestResult, error) {
	res, done, err := e.ingestHost(ctx, "sqlite", "")
	if err != nil {
		return res, err
	}
	// Sized while the host runs, as it leaves the files between runs.
	base := filepath.Join(e.work, "ingest-sqlite", sqliteFile)
	res.bytes, err = fileSizes(base, base+"-wal")
	return res, errors.Join(err, done())
}

func (e *bench) ingestPostgres(ctx context.Context, _ int) (_ ingestResult, err error) {
	db, dsn, drop, err := createDatabase(ctx, e.s.pgURL)
	if err != nil {
		return ingestResult{}, err
	}
	defer func() { err = errors.Join(err, drop()) }()
	res, done, err := e.ingestHost(ctx, "postgres", dsn)
	if err != nil {
		return res, err
	}
	c, err := pgx.Connect(ctx, dsn)
	if err == nil {
		// The record tables of any store version: records alone before
		// migration 6, records, streams and record_batches since.
		err = c.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(to_regclass(n))), 0)::bigint
			FROM unnest(ARRAY['records', 'streams', 'record_batches']) AS t(n) WHERE to_regclass(n) IS NOT NULL`).Scan(&res.bytes)
		c.Close(context.Background())
	}
	if err != nil {
		err = fmt.Errorf("size of records in %s: %w", db, err)
	}
	return res, errors.Join(err, done())
}

// RefError is a failed run of the C reference.
type RefError struct {
	Err    error
	Output string
}

func (e *RefError) Error() string {
	return fmt.Sprintf("C SQLite reference: %v\n%s", e.Err, strings.TrimSpace(e.Output))
}

func (e *RefError) Unwrap() error { return e.Err }

func (e *bench) ingestRef(ctx context.Context, _ int) (ingestResult, error) {
	dir := filepath.Join(e.work, "ingest-ref")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ingestResult{}, err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, sqliteFile)
	// Ids shaped like connhost's: prefix + 26-character ULID.
	conn, run := "conn_"+strings.Repeat("0", 26), "run_"+strings.Repeat("0", 26)
	cmd := exec.CommandContext(ctx, e.b.ref, db, fmt.Sprint(e.s.ingestRecords), conn, run)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return ingestResult{}, &RefError{Err: err, Output: out.String()}
	}
	size, err := fileSizes(db, db+"-wal")
	return ingestResult{rate: float64(e.s.ingestRecords) / d.Seconds(), bytes: size}, err
}

func fileSizes(paths ...string) (float64, error) {
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(p, "-wal") {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return float64(n), nil
}

// createDatabase creates an empty database bench_<random> on the server
// and returns its name, its URL and a func dropping it.
func createDatabase(ctx context.Context, server string) (string, string, func() error, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "bench_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", "", nil, &PGUnavailableError{URL: server, Err: err}
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", "", nil, err
	}
	u.Path = "/" + name
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return name, u.String(), drop, nil
}

// thousands prints n with comma separators: 1,000,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
