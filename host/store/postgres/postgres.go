// Package postgres is connhost's scale-out store: store.Store on a
// PostgreSQL database that several hosts share, through pgx v5 behind
// database/sql (the same sqlstore SQL as the SQLite backend).
//
// What differs from SQLite, and why:
//
//   - Many writers: read-modify-write transactions lock their rows
//     (SELECT … FOR UPDATE), and the dispatch queue's claim skips rows
//     another host is claiming (FOR UPDATE SKIP LOCKED), so workers on
//     every host take different occurrences without waiting.
//   - Migrations run under a session advisory lock (goose's PostgreSQL
//     session locker): hosts that boot together migrate once, the others
//     wait and find the schema current.
//   - Times are timestamptz (microseconds); JSON is jsonb, except record
//     data: json, kept as the connector wrote it, as on SQLite.
//   - Records go in by COPY (binary, see copyRows): a stream's new keys
//     are copied in until a copy meets a key the stream holds, which the
//     server writes at nearly twice the rate of INSERT … ON CONFLICT; that
//     batch is then committed again, and the stream's later batches go,
//     as an upsert (sqlstore's CommitBatch).
//   - LISTEN/NOTIFY carries the cluster's control messages (package
//     host/notify opens its own connection with Config.ConnConfig).
//
// The connection URL is a libpq URL or DSN, e.g.
// postgres://connhost@db.example.com:5432/connhost?sslmode=verify-full;
// its password, if any, never reaches a log or an error.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlstore"
	"github.com/connhost/connhost/host/store/sqlstore/migrations"
)

// DefaultMaxConns is the pool size when Config.MaxConns is zero.
const DefaultMaxConns = 16

// Config configures Open.
type Config struct {
	// URL is the database's connection URL or DSN. Required.
	URL string
	// MaxConns bounds the pool; 0 means DefaultMaxConns.
	MaxConns int
	// Now is the store's clock; nil means time.Now.
	Now func() time.Time
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("postgres: config: URL is required")
	case c.MaxConns < 0:
		return errors.New("postgres: config: MaxConns is negative")
	}
	return nil
}

// Store is the PostgreSQL store.
type Store struct {
	*sqlstore.Store
	conn    *pgx.ConnConfig
	version int64
	db      *sql.DB
	schema  string
}

// Dialect returns the PostgreSQL dialect of sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:          "postgres",
		Goose:         goose.DialectPostgres,
		Migrations:    migrations.Postgres(),
		Placeholders:  sqlstore.Dollars,
		TimePrecision: time.Microsecond,
		TimeType:      "timestamptz",
		IntType:       "bigint",
		ArrayBinds:    true,
		CopyRows:      copyRows,
		RelaxTx:       "SET LOCAL synchronous_commit = off",
		ForUpdate:     " FOR UPDATE",
		SkipLocked:    " FOR UPDATE SKIP LOCKED",
		// Hosts that boot together wait for the one migrating, probing
		// every second for up to 5 minutes.
		MigrationLock: func() (lock.SessionLocker, error) { return lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300)) },
	}
}

// ErrBadURL reports a connection URL pgx cannot parse. Its message never
// repeats the URL, which may hold a password.
var ErrBadURL = errors.New("postgres: the store URL is not a valid PostgreSQL connection URL")

// Open connects, applies pending migrations (once across hosts that boot
// together) and returns the store.
func Open(ctx context.Context, cfg Config) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, ErrBadURL
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "connhost"
	}
	maxConns := cfg.MaxConns
	if maxConns == 0 {
		maxConns = DefaultMaxConns
	}
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(cc), redact(err, cc))
	}
	version, err := sqlstore.Migrate(ctx, db, Dialect(), cfg.Logger)
	if err != nil {
		return nil, redact(err, cc)
	}
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_database() || '.' || current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("postgres: current schema: %w", redact(err, cc))
	}
	s, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: Dialect(), Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return &Store{Store: s, conn: cc, version: version, db: db, schema: schema}, nil
}

// Schema names the database and schema the store is in
// ("connhost.public"): what tells two clusters on one server apart.
func (s *Store) Schema() string { return s.schema }

// ConnConfig returns a copy of the parsed connection settings, for the
// LISTEN connection of host/notify.
func (s *Store) ConnConfig() *pgx.ConnConfig { return s.conn.Copy() }

// DB returns the pool the store runs on (for NOTIFY, in host/notify).
func (s *Store) DB() *sql.DB { return s.db }

// SchemaVersion returns the migration version the database is at.
func (s *Store) SchemaVersion() int64 { return s.version }

// Where names the server and database without credentials, for logs.
func (s *Store) Where() string { return where(s.conn) }

func where(cc *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres://%s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// redact keeps the password out of an error from the driver.
func redact(err error, cc *pgx.ConnConfig) error {
	if err == nil || cc.Password == "" {
		return err
	}
	return &redactedError{err: err, password: cc.Password}
}

type redactedError struct {
	err      error
	password string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.password, "[redacted]")
}

func (e *redactedError) Unwrap() error { return e.err }

var _ store.Store = (*Store)(nil)
