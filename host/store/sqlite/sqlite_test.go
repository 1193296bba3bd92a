package sqlite

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlstore"
	"github.com/connhost/connhost/host/store/storetest"
)

// openTest opens a store in dir (a fresh temp dir if "") with the given
// clock (time.Now if nil), closed when the test ends.
func openTest(t testing.TB, dir string, now func() time.Time) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(t.Context(), Config{DataDir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStoreSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store { return openTest(t, "", now) })
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", nil)
	for _, tc := range []struct {
		pool string
		db   *sql.DB
		name string
		want string
	}{
		{"writer", s.w, "journal_mode", "wal"},
		{"reader", s.r, "journal_mode", "wal"},
		{"writer", s.w, "synchronous", "2"}, // FULL
		{"writer", s.w, "foreign_keys", "1"},
		{"writer", s.w, "secure_delete", "1"},
		{"writer", s.w, "busy_timeout", "10000"},
		{"reader", s.r, "busy_timeout", "10000"},
		{"reader", s.r, "query_only", "1"},
	} {
		t.Run(tc.pool+" "+tc.name, func(t *testing.T) {
			if got := pragma(t, tc.db, tc.name); got != tc.want {
				t.Errorf("PRAGMA %s = %s, want %s", tc.name, got, tc.want)
			}
		})
	}
	if n := s.w.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool allows %d connections, want 1", n)
	}
}

// The dispatch queue's claims and completions commit relaxed
// (synchronous NORMAL); the writer is FULL again after each, so every
// other write still waits for the disk.
func TestRelaxedTransactionsRestoreFullSync(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", nil)
	ctx := t.Context()
	if _, err := s.UpsertConnector(ctx, store.ConnectorRegistration{Key: "k", Version: "1", Manifest: json.RawMessage(`{}`),
		Path: "/k", SHA256: strings.Repeat("0", 64)}); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConnection(ctx, store.NewConnection{ConnectorKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, err := s.RecordTicks(ctx, []store.Tick{{ConnectionID: c.ID, DueAt: now, RunAt: now}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDue(ctx, "h", now, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	if v := pragma(t, s.w, "synchronous"); v != "2" {
		t.Fatalf("synchronous after a claim = %s, want 2 (FULL)", v)
	}
	if _, err := s.CompleteOccurrences(ctx, []store.Completion{{ConnectionID: c.ID, OccurrenceID: got[0].ID, Holder: "h"}}); err != nil {
		t.Fatal(err)
	}
	if v := pragma(t, s.w, "synchronous"); v != "2" {
		t.Fatalf("synchronous after a completion = %s, want 2 (FULL)", v)
	}
}

// TestFileMode0600 checks the database and its WAL companions are private,
// including a database an older process left world-readable.
func TestFileMode0600(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	check := func(t *testing.T) {
		t.Helper()
		for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode = %v, want 0600", name, fi.Mode().Perm())
			}
		}
	}
	s, err := Open(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertConnector(t.Context(), registration("alpha")); err != nil {
		t.Fatal(err)
	}
	check(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	s = openTest(t, dir, nil)
	if _, err := s.UpsertConnector(t.Context(), registration("beta")); err != nil {
		t.Fatal(err)
	}
	check(t)
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s.SchemaVersion() < 1 {
		t.Fatalf("schema version = %d after open", s.SchemaVersion())
	}
	want := s.SchemaVersion()
	c := mustConnection(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		s := openTest(t, dir, nil)
		if s.SchemaVersion() != want {
			t.Errorf("reopen %d: schema version = %d, want %d", i, s.SchemaVersion(), want)
		}
		got, err := s.GetConnection(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("reopen %d: connection (-want +got):\n%s", i, diff)
		}
		// Applying again is a no-op, not an error.
		v, err := sqlstore.Migrate(t.Context(), s.w, Dialect(), nil)
		if err != nil || v != want {
			t.Errorf("Migrate on an up-to-date database = %d, %v; want %d, nil", v, err, want)
		}
		var applied int
		if err := s.w.QueryRowContext(t.Context(),
			`SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if int64(applied) != want {
			t.Errorf("goose recorded %d applied migrations, want %d", applied, want)
		}
	}
}

// TestConcurrentWritersNeverBusy hammers one database file with writers
// from many goroutines, through two stores (two pools, as two processes
// would have): none fails, with SQLITE_BUSY or anything else.
func TestConcurrentWritersNeverBusy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stores := []*Store{openTest(t, dir, nil), openTest(t, dir, nil)}
	ctx := t.Context()
	const goroutines, ops = 24, 15
	conns := make([]store.Connection, goroutines)
	for i := range conns {
		conns[i] = mustConnection(t, stores[0])
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	record := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	for g := range goroutines {
		s := stores[g%len(stores)]
		c := conns[g]
		wg.Go(func() {
			r, err := s.CreateRun(ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerManual})
			if err != nil {
				record(err)
				return
			}
			_, err = s.AcquireLease(ctx, store.LeaseRequest{ConnectionID: c.ID, RunID: r.ID, Holder: "h", TTL: time.Hour})
			record(err)
			_, err = s.MarkRunRunning(ctx, r.ID, nil)
			record(err)
			for i := range ops {
				recs := make([]store.Record, 20)
				for j := range recs {
					recs[j] = store.Record{Stream: "s", Key: fmt.Sprintf("%d-%d", i, j), Data: json.RawMessage(`{"x":1}`)}
				}
				record(s.CommitBatch(ctx, c.ID, r.ID, recs, []byte(fmt.Sprint(i))))
				_, err := s.AppendAudit(ctx, store.AuditEvent{Actor: "t", Operation: "op", TargetKind: "connection", TargetID: c.ID, Outcome: store.AuditSucceeded})
				record(err)
				_, err = s.CaptureCredential(ctx, store.SealedCredential{
					ConnectionID: c.ID, Kind: store.CredentialStaticSecret, Names: []string{"T"}, Ciphertext: []byte{byte(i)}, KeyID: 1,
				})
				record(err)
				_, err = s.HasActiveCredential(ctx, c.ID)
				record(err)
			}
			_, err = s.FinishRun(ctx, r.ID, store.RunResult{Status: store.RunSucceeded}) // releases its lease
			record(err)
		})
	}
	wg.Wait()
	for _, err := range errs {
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY {
			t.Errorf("SQLITE_BUSY: %v", err)
		} else {
			t.Errorf("writer failed: %v", err)
		}
	}
	page, err := stores[1].ListAudit(ctx, store.AuditFilter{Limit: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != goroutines*ops {
		t.Errorf("audit events = %d, want %d", len(page.Events), goroutines*ops)
	}
}

// TestAuditTriggersRefuseRawWrites: the audit table is append-only in the
// schema itself, not only in the Go API.
func TestAuditTriggersRefuseRawWrites(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", nil)
	e, err := s.AppendAudit(t.Context(), store.AuditEvent{Actor: "a", Operation: "o", TargetKind: "k", Outcome: store.AuditSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_events SET outcome = 'failed' WHERE id = ?`,
		`DELETE FROM audit_events WHERE id = ?`,
	} {
		_, err := s.w.ExecContext(t.Context(), q, e.ID)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error = %v, want append-only refusal", q, err)
		}
	}
	page, err := s.ListAudit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.AuditEvent{e}, page.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestCommitBatchFailsMidTransaction makes the third INSERT of a batch fail
// inside the database (a trigger rejects one record, after two statements
// already ran): neither the records of the first statements nor the
// checkpoint are kept.
func TestCommitBatchFailsMidTransaction(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", nil)
	ctx := t.Context()
	c := mustConnection(t, s)
	r := mustRunningRun(t, s, c.ID)
	if err := s.CommitBatch(ctx, c.ID, r.ID, []store.Record{{Stream: "s", Key: "before", Data: json.RawMessage(`1`)}}, []byte("cp-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TRIGGER poison BEFORE INSERT ON records WHEN NEW.key = 'poison'
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	recs := make([]store.Record, 450)
	for i := range recs {
		recs[i] = store.Record{Stream: "s", Key: fmt.Sprintf("k%03d", i), Data: json.RawMessage(`2`)}
	}
	recs[420].Key = "poison" // in the third 200-row statement
	err := s.CommitBatch(ctx, c.ID, r.ID, recs, []byte("cp-2"))
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("CommitBatch = %v, want the injected failure", err)
	}
	page, err := s.ListRecords(ctx, store.RecordQuery{ConnectionID: c.ID, Limit: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].Key != "before" {
		t.Errorf("records after the failed batch = %d (first %q), want only the one before", len(page.Records), page.Records[0].Key)
	}
	if cp, _, err := s.GetCheckpoint(ctx, c.ID); err != nil || string(cp) != "cp-1" {
		t.Errorf("checkpoint = %q, %v; want cp-1", cp, err)
	}
	if got, err := s.GetRun(ctx, r.ID); err != nil || got.Records != 1 {
		t.Errorf("run records = %d, %v; want 1", got.Records, err)
	}
}

// TestDeletedCiphertextLeavesTheFile: with secure_delete, a deleted
// credential's ciphertext is overwritten, not left in free space.
func TestDeletedCiphertextLeavesTheFile(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", nil)
	ctx := t.Context()
	marker := []byte("CIPHERTEXT-MARKER-7f3a9c")
	for i, del := range []func(id string) error{
		func(id string) error { _, err := s.DeleteCredential(ctx, id); return err },
		func(id string) error { _, err := s.DeleteConnection(ctx, id); return err },
	} {
		c := mustConnection(t, s)
		if _, err := s.CaptureCredential(ctx, store.SealedCredential{
			ConnectionID: c.ID, Kind: store.CredentialStaticSecret, Names: []string{"TOKEN"}, Ciphertext: marker, KeyID: 1,
		}); err != nil {
			t.Fatal(err)
		}
		checkpointWAL(t, s)
		if !fileContains(t, s.Path(), marker) {
			t.Fatalf("case %d: the marker is not in the file after capture: the check would prove nothing", i)
		}
		if err := del(c.ID); err != nil {
			t.Fatal(err)
		}
		checkpointWAL(t, s)
		if fileContains(t, s.Path(), marker) {
			t.Errorf("case %d: the deleted ciphertext is still in the database file", i)
		}
	}
}

func checkpointWAL(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.w.ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
}

func fileContains(t *testing.T, path string, b []byte) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(data, b)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cfg Config
		ok  bool
	}{
		"minimal":           {Config{DataDir: "/var/lib/connhost"}, true},
		"all set":           {Config{DataDir: "d", FileName: "x.db", BusyTimeout: time.Second, ReadConns: 2}, true},
		"no data dir":       {Config{}, false},
		"question mark":     {Config{DataDir: "/tmp/a?b"}, false},
		"file name is path": {Config{DataDir: "d", FileName: "../x.db"}, false},
		"negative busy":     {Config{DataDir: "d", BusyTimeout: -1}, false},
		"negative readers":  {Config{DataDir: "d", ReadConns: -1}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestNoCgoDependency: the embedded store must build with CGO_ENABLED=0,
// so nothing outside the standard library it depends on may use cgo.
func TestNoCgoDependency(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH")
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-deps",
		"-f", "{{if and (not .Standard) .CgoFiles}}{{.ImportPath}}{{end}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if pkgs := strings.TrimSpace(string(out)); pkgs != "" {
		t.Errorf("dependencies using cgo:\n%s", pkgs)
	}
}

func registration(key string) store.ConnectorRegistration {
	return store.ConnectorRegistration{
		Key: key, Version: "1", Manifest: json.RawMessage(`{}`), Path: "/p/" + key, SHA256: strings.Repeat("0", 64),
	}
}

func mustConnection(t testing.TB, s *Store) store.Connection {
	t.Helper()
	if _, err := s.GetConnector(t.Context(), "alpha"); err != nil {
		if _, err := s.UpsertConnector(t.Context(), registration("alpha")); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateConnection(t.Context(), store.NewConnection{ConnectorKey: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRunningRun(t testing.TB, s *Store, connID string) store.Run {
	t.Helper()
	ctx := t.Context()
	r, err := s.CreateRun(ctx, store.NewRun{ConnectionID: connID, Trigger: store.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, store.LeaseRequest{ConnectionID: connID, RunID: r.ID, Holder: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if r, err = s.MarkRunRunning(ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	return r
}
