package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlstore"
)

// RecordTables checks, in the tables themselves, what the API cannot
// show of how records are kept: a stream is interned once per connection
// (its id is distinct from every other connection's stream of the same
// name), a commit adds one record_batches row, and deleting a connection
// leaves no row of its records, streams or batches while another
// connection's stay. s must run on db, of dialect d.
func RecordTables(t *testing.T, s store.Store, db *sql.DB, d sqlstore.Dialect) {
	ctx := context.Background()
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, d.Rebind(query), args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	if _, err := s.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1",
		Manifest: json.RawMessage(`{"connector_key":"bench","version":"1"}`), Path: "/bench", SHA256: fmt.Sprintf("%064d", 0)}); err != nil {
		t.Fatal(err)
	}
	conns := make([]string, 2)
	for i := range conns {
		c, err := s.CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench"})
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.ID
		r := startRun(t, s, c.ID)
		for _, batch := range [][]store.Record{
			{{Stream: "s", Key: "1", Data: json.RawMessage(`1`)}, {Stream: "t", Key: "1", Data: json.RawMessage(`1`)}},
			{{Stream: "s", Key: "1", Data: json.RawMessage(`2`)}, {Stream: "s", Key: "2", Data: json.RawMessage(`2`)}},
			nil, // a checkpoint alone adds no batch
		} {
			if err := s.CommitBatch(ctx, c.ID, r.ID, batch, []byte("cp")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.FinishRun(ctx, r.ID, store.RunResult{Status: store.RunSucceeded}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		what  string
		query string
		want  int
	}{
		{"streams", `SELECT count(*) FROM streams`, 4},
		{"distinct stream ids", `SELECT count(DISTINCT id) FROM streams`, 4},
		{"streams named s", `SELECT count(DISTINCT id) FROM streams WHERE name = 's'`, 2},
		{"batches", `SELECT count(*) FROM record_batches`, 4},
		{"records", `SELECT count(*) FROM records`, 6},
		{"records of orphan streams", `SELECT count(*) FROM records WHERE stream_id NOT IN (SELECT id FROM streams)`, 0},
	} {
		if got := count(tc.query); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.what, got, tc.want)
		}
	}

	del, err := s.DeleteConnection(ctx, conns[0])
	if err != nil {
		t.Fatal(err)
	}
	if del.Records != 3 {
		t.Errorf("deleted %d records, want 3", del.Records)
	}
	for _, tc := range []struct {
		query string
		want  [2]int // rows of the deleted connection, of the other
	}{
		{`SELECT count(*) FROM streams WHERE connection_id = ?`, [2]int{0, 2}},
		{`SELECT count(*) FROM record_batches WHERE connection_id = ?`, [2]int{0, 2}},
		{`SELECT count(*) FROM records r JOIN streams s ON s.id = r.stream_id WHERE s.connection_id = ?`, [2]int{0, 3}},
	} {
		for i, id := range conns {
			if got := count(tc.query, id); got != tc.want[i] {
				t.Errorf("%s [%s] = %d, want %d", tc.query, id, got, tc.want[i])
			}
		}
	}
	if got := count(`SELECT count(*) FROM records`); got != 3 {
		t.Errorf("%d records left, want the other connection's 3", got)
	}
}

// MigrateRecords checks migration 6 on db, an empty database of dialect
// d: records written in the shape of version 5 (rows from before version
// 4 have seq 0) list after the migration by stream, then emit order, with
// their runs and times; new records follow them; and migrating down to 5
// and up again loses nothing. It closes db.
func MigrateRecords(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	ctx := context.Background()
	p, err := goose.NewProvider(d.Goose, db, d.Migrations, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return time.Date(2026, 1, 2, 3, 4, sec, 0, time.UTC) }
	bind := func(t time.Time) any {
		if d.TimeAsText {
			return sqlstore.FormatTime(t)
		}
		return t
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, d.Rebind(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	exec(`INSERT INTO connectors (key, version, manifest, path, sha256, registered_at, updated_at) VALUES ('k', '1', '{}', '/k', ?, ?, ?)`,
		fmt.Sprintf("%064d", 0), bind(at(0)), bind(at(0)))
	for _, id := range []string{"conn_a", "conn_b"} {
		exec(`INSERT INTO connections (id, connector_key, state, created_at, updated_at, record_seq) VALUES (?, 'k', 'active', ?, ?, 3)`,
			id, bind(at(0)), bind(at(0)))
	}
	type old struct {
		conn, stream, key, data, run string
		at, seq                      int
	}
	for _, r := range []old{
		{"conn_a", "zeta", "x", `{"v":"x"}`, "run_2", 2, 2},
		{"conn_a", "zeta", "y", `{"v":"y"}`, "run_1", 1, 1},
		{"conn_a", "alpha", "b", `{"v":"b"}`, "run_0", 0, 0},
		{"conn_a", "alpha", "a", `{"v":"a"}`, "run_0", 0, 0},
		{"conn_a", "alpha", "c", `{"v":"c"}`, "run_2", 2, 3},
		{"conn_b", "alpha", "a", `{"v":"other"}`, "run_b", 1, 1},
	} {
		exec(`INSERT INTO records (connection_id, stream, key, data, run_id, updated_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.conn, r.stream, r.key, r.data, r.run, bind(at(r.at)), r.seq)
	}
	want := []store.StoredRecord{
		{Stream: "alpha", Key: "a", Data: json.RawMessage(`{"v":"a"}`), RunID: "run_0", UpdatedAt: at(0)},
		{Stream: "alpha", Key: "b", Data: json.RawMessage(`{"v":"b"}`), RunID: "run_0", UpdatedAt: at(0)},
		{Stream: "alpha", Key: "c", Data: json.RawMessage(`{"v":"c"}`), RunID: "run_2", UpdatedAt: at(2)},
		{Stream: "zeta", Key: "y", Data: json.RawMessage(`{"v":"y"}`), RunID: "run_1", UpdatedAt: at(1)},
		{Stream: "zeta", Key: "x", Data: json.RawMessage(`{"v":"x"}`), RunID: "run_2", UpdatedAt: at(2)},
	}
	for i := range want {
		want[i].ConnectionID = "conn_a"
	}

	if _, err := sqlstore.Migrate(ctx, db, d, nil); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, Now: func() time.Time { return at(30) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list := func(what string, want []store.StoredRecord) {
		t.Helper()
		var got []store.StoredRecord
		for cursor := ""; ; {
			page, err := s.ListRecords(ctx, store.RecordQuery{ConnectionID: "conn_a", Cursor: cursor, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Records...)
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		diff(t, what, want, got)
	}
	list("migrated records", want)

	// New keys follow the migrated ones; a migrated key keeps its place.
	r := startRun(t, s, "conn_a")
	if err := s.CommitBatch(ctx, "conn_a", r.ID, []store.Record{
		{Stream: "zeta", Key: "new", Data: json.RawMessage(`1`)},
		{Stream: "alpha", Key: "a", Data: json.RawMessage(`2`)},
	}, nil); err != nil {
		t.Fatal(err)
	}
	want[0] = store.StoredRecord{ConnectionID: "conn_a", Stream: "alpha", Key: "a", Data: json.RawMessage(`2`), RunID: r.ID, UpdatedAt: at(30)}
	want = append(want, store.StoredRecord{ConnectionID: "conn_a", Stream: "zeta", Key: "new", Data: json.RawMessage(`1`), RunID: r.ID, UpdatedAt: at(30)})
	list("after a commit", want)

	// Down to version 5 and up again: the same records in the same order.
	if _, err := p.DownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE seq > 0`).Scan(&n); err != nil || n != 7 {
		t.Errorf("version 5 holds %d records with a seq (%v), want 7", n, err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	list("after down and up", want)
	page, err := s.ListRecords(ctx, store.RecordQuery{ConnectionID: "conn_b"})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "the other connection", []store.StoredRecord{{ConnectionID: "conn_b", Stream: "alpha", Key: "a",
		Data: json.RawMessage(`{"v":"other"}`), RunID: "run_b", UpdatedAt: at(1)}}, page.Records)
}

// MigrateStreamRecords checks migration 7 on db, an empty database of
// dialect d: a run from version 6 reads with its count and no counts by
// stream, and keeps none when it commits again (they would not sum to
// its count); a new run counts by stream; and migrating down to 6 and up
// again keeps every run's count. It closes db.
func MigrateStreamRecords(t *testing.T, db *sql.DB, d sqlstore.Dialect) {
	ctx := context.Background()
	p, err := goose.NewProvider(d.Goose, db, d.Migrations, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var bindAt any = at
	if d.TimeAsText {
		bindAt = sqlstore.FormatTime(at)
	}
	for _, q := range []string{
		`INSERT INTO connectors (key, version, manifest, path, sha256, registered_at, updated_at) VALUES ('k', '1', '{}', '/k', '` + fmt.Sprintf("%064d", 0) + `', ?, ?)`,
		`INSERT INTO connections (id, connector_key, state, created_at, updated_at) VALUES ('conn_a', 'k', 'active', ?, ?)`,
		`INSERT INTO runs (id, connection_id, trigger, attempt, retry_of, status, created_at, started_at, records) VALUES ('run_old', 'conn_a', 'manual', 1, '', 'running', ?, ?, 3)`,
	} {
		if _, err := db.ExecContext(ctx, d.Rebind(q), bindAt, bindAt); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := sqlstore.Migrate(ctx, db, d, nil); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, Now: func() time.Time { return at.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(what, id string, records int64, want map[string]int64) {
		t.Helper()
		r, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Records != records {
			t.Errorf("%s: %s records = %d, want %d", what, id, r.Records, records)
		}
		diff(t, what+": "+id+" stream records", want, r.StreamRecords)
	}
	get("migrated", "run_old", 3, nil)

	if _, err := s.AcquireLease(ctx, store.LeaseRequest{ConnectionID: "conn_a", RunID: "run_old", Holder: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	rec := []store.Record{{Stream: "events", Key: "a", Data: json.RawMessage(`1`)}}
	if err := s.CommitBatch(ctx, "conn_a", "run_old", rec, nil); err != nil {
		t.Fatal(err)
	}
	get("committed across the upgrade", "run_old", 4, nil)
	if _, err := s.FinishRun(ctx, "run_old", store.RunResult{Status: store.RunSucceeded}); err != nil {
		t.Fatal(err)
	}

	r := startRun(t, s, "conn_a")
	if err := s.CommitBatch(ctx, "conn_a", r.ID, append(rec, rec...), nil); err != nil {
		t.Fatal(err)
	}
	get("new", r.ID, 2, map[string]int64{"events": 2})

	if _, err := p.DownTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	get("after down and up", "run_old", 4, nil)
	get("after down and up", r.ID, 2, nil)
}

// startRun creates a manual run of connID, takes its lease and marks it
// running: a run that may commit records.
func startRun(t testing.TB, s store.Store, connID string) store.Run {
	t.Helper()
	ctx := context.Background()
	r, err := s.CreateRun(ctx, store.NewRun{ConnectionID: connID, Trigger: store.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, store.LeaseRequest{ConnectionID: connID, RunID: r.ID, Holder: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRunRunning(ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	return r
}
