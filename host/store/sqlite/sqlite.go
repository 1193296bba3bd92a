// Package sqlite is connhost's embedded default store: store.Store on a
// SQLite file in the data dir, through the pure-Go modernc.org/sqlite driver
// (the binary builds with CGO_ENABLED=0).
//
// Settings, and why:
//
//   - WAL journal: readers never block the writer or each other.
//   - One writer connection, several read-only ones. database/sql queues
//     writers for the single write connection, so concurrent writers in
//     this process wait their turn instead of failing with SQLITE_BUSY;
//     transactions BEGIN IMMEDIATE and busy_timeout covers another process
//     on the same file.
//   - synchronous=FULL: in WAL mode NORMAL can lose the last commits on
//     power loss or an OS crash (never corrupting the file). What the API
//     acknowledges includes credential revokes and deletes and audit
//     events, which must not silently come back or vanish; the cost is one
//     WAL fsync per commit, and every batch of records is one commit.
//   - secure_delete=on: a deleted credential's ciphertext and deleted
//     records are overwritten in the file, not left in free pages.
//   - foreign_keys=on: children of a connection cannot outlive it.
//   - The file (and its -wal and -shm companions) is mode 0600.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlstore"
	"github.com/connhost/connhost/host/store/sqlstore/migrations"
)

// FileName is the database file's default name in the data dir.
const FileName = "connhost.db"

// Defaults for Config's zero values.
const (
	DefaultBusyTimeout = 10 * time.Second
	DefaultReadConns   = 4
)

// fileMode is the mode of the database file and its companions.
const fileMode os.FileMode = 0o600

// Config configures Open.
type Config struct {
	// DataDir holds the database file; it is created (0700) if missing.
	DataDir string
	// FileName is the database file's name; "" means FileName.
	FileName string
	// Now is the store's clock; nil means time.Now.
	Now func() time.Time
	// BusyTimeout bounds how long a connection waits for a lock held by
	// another process; 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// ReadConns is the size of the read-only pool; 0 means
	// DefaultReadConns.
	ReadConns int
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// Checked says the caller ran Preflight on this file just before
	// (holding the data dir's lock), so Open skips its own quick_check,
	// a read of the whole file.
	Checked bool
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("sqlite: config: DataDir is required")
	case strings.ContainsAny(c.DataDir+c.FileName, "?#"):
		// The driver reads everything after '?' as DSN parameters.
		return errors.New("sqlite: config: path must not contain '?' or '#'")
	case c.FileName != "" && c.FileName != filepath.Base(c.FileName):
		return errors.New("sqlite: config: FileName must be a bare file name")
	case c.BusyTimeout < 0:
		return errors.New("sqlite: config: BusyTimeout is negative")
	case c.ReadConns < 0:
		return errors.New("sqlite: config: ReadConns is negative")
	}
	return nil
}

// Store is the SQLite store.
type Store struct {
	*sqlstore.Store
	path    string
	version int64
	w, r    *sql.DB // the pools sqlstore runs on, kept for Close and tests
}

// Dialect returns the SQLite dialect of sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "sqlite",
		Goose:         goose.DialectSQLite3,
		Migrations:    migrations.SQLite(),
		Placeholders:  sqlstore.QuestionMarks,
		TimeAsText:    true,
		TimePrecision: time.Nanosecond,
		TimeType:      "TEXT",
		IntType:       "INTEGER",
		RelaxConn:     [2]string{"PRAGMA synchronous = NORMAL", "PRAGMA synchronous = FULL"},
	}
}

// Open opens (creating if needed) the database in cfg.DataDir, applies
// pending migrations and returns the store.
func Open(ctx context.Context, cfg Config) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name := cfg.FileName
	if name == "" {
		name = FileName
	}
	busy := cfg.BusyTimeout
	if busy == 0 {
		busy = DefaultBusyTimeout
	}
	readConns := cfg.ReadConns
	if readConns == 0 {
		readConns = DefaultReadConns
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, name)
	if err := createPrivate(path); err != nil {
		return nil, err
	}

	busyMS := strconv.FormatInt(busy.Milliseconds(), 10)
	w, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {
			"busy_timeout(" + busyMS + ")",
			"foreign_keys(1)",
			"journal_mode(WAL)",
			"synchronous(FULL)",
			"secure_delete(1)",
		},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// One connection, kept for the life of the store: writers queue here.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	defer func() {
		if err != nil {
			_ = w.Close()
		}
	}()
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, openErr(path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("sqlite: open %s: journal mode is %q, want wal", path, mode)
	}
	if !cfg.Checked {
		if err := quickCheck(ctx, w, path); err != nil {
			return nil, err
		}
	}
	version, err := sqlstore.Migrate(ctx, w, Dialect(), cfg.Logger)
	if err != nil {
		return nil, err
	}
	// A migration that rewrote a table leaves a WAL as large as the
	// table: fold it into the database and truncate it now, before any
	// reader holds it open. On a store already current the WAL is what a
	// clean shutdown left: little or nothing.
	if _, err := w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return nil, openErr(path, err)
	}
	if err := privateCompanions(path); err != nil {
		return nil, err
	}

	r, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {"busy_timeout(" + busyMS + ")", "query_only(1)"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	if err := r.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	s, err := sqlstore.New(sqlstore.Config{DB: w, ReadDB: r, Dialect: Dialect(), Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return &Store{Store: s, path: path, version: version, w: w, r: r}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// SchemaVersion returns the migration version the database is at.
func (s *Store) SchemaVersion() int64 { return s.version }

// Close lets SQLite refresh its query-planner statistics, then closes the
// pools.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, optErr := s.w.ExecContext(ctx, "PRAGMA optimize")
	return errors.Join(s.Store.Close(), optErr)
}

func dsn(path string, params url.Values) string { return path + "?" + params.Encode() }

// createPrivate creates the database file 0600 if missing and tightens an
// existing one: SQLite creates its -wal and -shm files with the database
// file's mode, so this also keeps them private.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := os.Chmod(path, fileMode); err != nil {
		return fmt.Errorf("sqlite: chmod %s: %w", path, err)
	}
	return nil
}

// privateCompanions tightens the -wal and -shm files left by an earlier
// process whose database file was less private.
func privateCompanions(path string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		err := os.Chmod(path+suffix, fileMode)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sqlite: chmod %s: %w", path+suffix, err)
		}
	}
	return nil
}

var _ store.Store = (*Store)(nil)

// quickCheck runs SQLite's quick_check — every page read, b-tree and
// record structure checked, indexes not compared with their tables — and
// refuses a damaged file (store.ErrCorrupt): a store that boots serves no
// short answers from a page nobody checked. Its cost is one read of the
// file (see the README's figure for 1 GB).
func quickCheck(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check(10)")
	if err != nil {
		return openErr(path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return openErr(path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return openErr(path, err)
	}
	if len(problems) > 0 {
		return corruptFile(path, strings.Join(problems, "; "))
	}
	return nil
}

// openErr is an error opening path: a file that is not a database, or a
// damaged one, is store.ErrCorrupt.
func openErr(path string, err error) error {
	if sqlstore.IsCorrupt(err) {
		return corruptFile(path, err.Error())
	}
	return fmt.Errorf("sqlite: open %s: %w", path, err)
}

func corruptFile(path, detail string) error {
	return &failure.Error{Code: failure.StoreCorrupt, Err: fmt.Errorf("%w: %s", store.ErrCorrupt, detail),
		Message: fmt.Sprintf("%s failed its integrity check (%s): restore it (with its -wal and -shm files) from a backup; without one, move the three files aside and start with --new-store (an empty store: connections, credentials and records do not come back)", path, detail)}
}

// Inspection is what Preflight read.
type Inspection struct {
	// Exists says the file was there, not empty, and inspected.
	Exists bool
	// StoreID is the store's identity, "" when it has none yet.
	StoreID string
	// KeyIDs are the key ids that seal its stored credentials.
	KeyIDs []uint32
}

// Preflight inspects the database file at path without changing a byte of
// it or of its -wal: it opens it read-only, runs the same quick_check as
// Open, and reads the store's identity and the key ids that seal its
// stored credentials. A boot that may refuse to start (a damaged store,
// another store's file, a keyset its credentials need and that is
// missing) asks here first, so a refusal leaves the data dir as the
// operator found it. A missing or empty file has nothing to inspect: a
// zero Inspection.
func Preflight(ctx context.Context, path string) (Inspection, error) {
	var out Inspection
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("sqlite: %w", err)
	}
	q := url.Values{
		"mode":    {"ro"},
		"_pragma": {"busy_timeout(" + strconv.FormatInt(DefaultBusyTimeout.Milliseconds(), 10) + ")", "query_only(1)"},
	}
	if wal, err := os.Stat(path + "-wal"); errors.Is(err, os.ErrNotExist) || (err == nil && wal.Size() == 0) {
		// Everything is in the file itself (a clean stop folded the WAL
		// in): read it as immutable, which creates no -wal or -shm.
		// Otherwise a read-only reader of the WAL sets its read marks in
		// the -shm, SQLite's shared-memory index of the WAL, not data.
		q.Set("immutable", "1")
	}
	out.Exists = true
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return out, fmt.Errorf("sqlite: open: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := quickCheck(ctx, db, path); err != nil {
		return out, err
	}
	tables := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('store_meta', 'credentials')`)
	if err != nil {
		return out, openErr(path, err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return out, openErr(path, err)
		}
		tables[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, openErr(path, err)
	}
	if tables["store_meta"] {
		err := db.QueryRowContext(ctx, `SELECT value FROM store_meta WHERE key = 'store_id'`).Scan(&out.StoreID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return out, openErr(path, err)
		}
	}
	if !tables["credentials"] {
		return out, nil
	}
	rows, err = db.QueryContext(ctx, `SELECT DISTINCT key_id FROM credentials WHERE ciphertext IS NOT NULL ORDER BY key_id`)
	if err != nil {
		return out, openErr(path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return out, openErr(path, err)
		}
		out.KeyIDs = append(out.KeyIDs, uint32(id))
	}
	if err := rows.Err(); err != nil {
		return out, openErr(path, err)
	}
	return out, nil
}
