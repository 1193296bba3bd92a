package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// Config configures a Store.
type Config struct {
	// DB runs every write transaction, and the reads when ReadDB is nil.
	DB *sql.DB
	// ReadDB, if set, runs reads outside transactions.
	ReadDB *sql.DB
	// Dialect describes the database.
	Dialect Dialect
	// Now is the clock every stored time comes from; nil means time.Now.
	Now func() time.Time
	// Entropy feeds id generation; nil means crypto/rand.
	Entropy io.Reader
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.DB == nil {
		return errors.New("sqlstore: config: DB is required")
	}
	return c.Dialect.Validate()
}

// Store implements store.Store over database/sql. It takes ownership of the
// pools in its Config: Close closes them.
type Store struct {
	w, r *sql.DB
	d    Dialect
	now  func() time.Time

	idMu    sync.Mutex
	entropy *ulid.MonotonicEntropy

	stmts map[*sql.DB]*stmtCache // prepared statements per pool

	// upserted holds the ids (int64) of the streams whose batches are
	// upserted rather than copied (see copyRecords).
	upserted sync.Map

	statements atomic.Uint64 // statements run, for benchmarks
	corrupt    atomic.Bool   // a statement hit a damaged page
}

// Statements returns how many statements the store has run (benchmarks
// divide it by the work done: store queries per occurrence).
func (s *Store) Statements() uint64 { return s.statements.Load() }

// stmtCache holds a pool's prepared statements by query text. database/sql
// prepares each on a connection the first time it runs there and reuses it
// after, in and out of transactions, which spares re-parsing every query
// (most of the cost of a point read on SQLite). The set of query texts is
// bounded: filters combine a handful of columns and record upserts come
// in recordChunkBits+1 sizes (see recordUpserts).
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// New returns a Store over an already migrated database (see Migrate).
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{w: cfg.DB, r: cfg.ReadDB, d: cfg.Dialect, now: cfg.Now}
	if s.r == nil {
		s.r = s.w
	}
	if s.now == nil {
		s.now = time.Now
	}
	src := cfg.Entropy
	if src == nil {
		src = rand.Reader
	}
	s.entropy = ulid.Monotonic(src, 0)
	s.stmts = map[*sql.DB]*stmtCache{s.w: {m: map[string]*sql.Stmt{}}, s.r: {m: map[string]*sql.Stmt{}}}
	return s, nil
}

// Ping checks both pools; once a statement has hit a damaged page it
// reports the store corrupt.
func (s *Store) Ping(ctx context.Context) error {
	if s.corrupt.Load() {
		return corrupt("ping", nil)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlstore: ping: %w", err)
		}
	}
	return nil
}

// Close closes the prepared statements and the pools.
func (s *Store) Close() error {
	var errs []error
	for _, c := range s.stmts {
		c.mu.Lock()
		for _, st := range c.m {
			errs = append(errs, st.Close())
		}
		c.m = map[string]*sql.Stmt{}
		c.mu.Unlock()
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// stamp returns the current time in UTC at the dialect's precision.
func (s *Store) stamp() time.Time { return s.trunc(s.now()) }

func (s *Store) trunc(t time.Time) time.Time { return t.UTC().Truncate(s.d.TimePrecision) }

// newID returns prefix + a ULID from the store's clock. Ids made in the same
// millisecond still sort in creation order (monotonic entropy).
func (s *Store) newID(prefix string, at time.Time) (string, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	id, err := ulid.New(ulid.Timestamp(at), s.entropy)
	if err != nil {
		return "", fmt.Errorf("sqlstore: new id: %w", err)
	}
	return prefix + id.String(), nil
}

// prepared returns the cached statement for query on pool db, preparing
// it (rebound for the dialect) on first use.
func (s *Store) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	c := s.stmts[db]
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	// Not under c.mu: preparing waits for a connection, which a
	// transaction may hold while it looks up its own statements.
	st, err := db.PrepareContext(ctx, s.d.Rebind(query))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok { // prepared concurrently
		_ = st.Close()
		return prev, nil
	}
	c.m[query] = st
	return st, nil
}

// querier is where a query runs: a pool (*sql.DB) or a write transaction
// (*txn).
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// txn is a write transaction. A query not yet prepared on the writer pool
// is prepared on the transaction alone and remembered: it cannot be
// prepared on the pool now, since a single-connection pool's connection is
// the one the transaction holds. Store.tx prepares it on the pool once the
// transaction is over.
type txn struct {
	*sql.Tx
	conn       *sql.Conn // the connection Tx is open on
	unprepared []string
}

// stmt returns the prepared statement for query on db.
func (s *Store) stmt(ctx context.Context, db querier, query string) (*sql.Stmt, error) {
	switch db := db.(type) {
	case *txn:
		c := s.stmts[s.w]
		c.mu.Lock()
		st, ok := c.m[query]
		c.mu.Unlock()
		if ok {
			// Bound to the transaction, on its connection, where the pool
			// statement is (or gets) prepared once for good.
			return db.StmtContext(ctx, st), nil
		}
		db.unprepared = append(db.unprepared, query)
		return db.PrepareContext(ctx, s.d.Rebind(query))
	case *sql.DB:
		return s.prepared(ctx, db, query)
	}
	return nil, fmt.Errorf("sqlstore: unexpected querier %T", db)
}

func (s *Store) exec(ctx context.Context, db querier, query string, args ...any) (sql.Result, error) {
	s.statements.Add(1)
	st, err := s.stmt(ctx, db, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *Store) query(ctx context.Context, db querier, query string, args ...any) (*sql.Rows, error) {
	s.statements.Add(1)
	st, err := s.stmt(ctx, db, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// scanner is a single-row result: *sql.Row, or the error preparing it.
type scanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (s *Store) queryRow(ctx context.Context, db querier, query string, args ...any) scanner {
	s.statements.Add(1)
	st, err := s.stmt(ctx, db, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// tx runs fn in a write transaction, committing if it returns nil. fn must
// use only tx: on a single-connection pool any other query would wait for
// the connection fn holds.
//
// ctx bounds the wait for the connection and every statement fn runs, but
// not the COMMIT: cancelling a commit in flight (which a network driver
// does by dropping the connection) leaves the caller an error for a
// transaction that may have committed. Here an error means nothing was
// committed; ctx is checked once more just before COMMIT.
func (s *Store) tx(ctx context.Context, fn func(tx *txn) error) error {
	return s.txWith(ctx, false, fn)
}

// txRelaxed is tx for bookkeeping that heals itself after a crash: it
// commits without waiting for the disk (see Dialect.RelaxConn).
func (s *Store) txRelaxed(ctx context.Context, fn func(tx *txn) error) error {
	return s.txWith(ctx, true, fn)
}

func (s *Store) txWith(ctx context.Context, relaxed bool, fn func(tx *txn) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	tx := &txn{conn: conn}
	if relaxed && s.d.RelaxConn[0] != "" {
		if _, err := conn.ExecContext(ctx, s.d.RelaxConn[0]); err != nil {
			_ = conn.Close()
			return fmt.Errorf("sqlstore: relax: %w", err)
		}
		defer func() {
			// The connection must not stay relaxed; a failure to restore
			// it discards the connection.
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), s.d.RelaxConn[1]); rerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			_ = conn.Close()
			s.prepareLater(ctx, tx)
		}()
		return s.runTx(ctx, conn, tx, func(tx *txn) error { return fn(tx) })
	}
	err = s.runTx(ctx, conn, tx, func(tx *txn) error {
		if relaxed && s.d.RelaxTx != "" {
			if _, err := tx.ExecContext(ctx, s.d.RelaxTx); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	_ = conn.Close() // back to the pool, before prepareLater needs it
	s.prepareLater(ctx, tx)
	return err
}

func (s *Store) runTx(ctx context.Context, conn *sql.Conn, tx *txn, fn func(tx *txn) error) error {
	sqlTx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	tx.Tx = sqlTx
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one that matters
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// prepareLater prepares on the writer pool the queries tx ran unprepared.
// It is an optimization only: a failure leaves the query to be prepared
// by a later transaction.
func (s *Store) prepareLater(ctx context.Context, tx *txn) {
	if ctx.Err() != nil {
		return
	}
	for _, q := range tx.unprepared {
		if _, err := s.prepared(ctx, s.w, q); err != nil {
			return
		}
	}
}

// affected returns the row count of an exec result.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: rows affected: %w", err)
	}
	return n, nil
}

// storeErrs are the errors that already say what happened; dbErr passes
// them through so callers see them as documented.
var storeErrs = []error{
	store.ErrInvalid, store.ErrConnectorNotFound, store.ErrConnectionNotFound,
	store.ErrCredentialNotFound, store.ErrCredentialState, store.ErrCiphertextChanged,
	store.ErrInvalidTransition, store.ErrRunNotFound, store.ErrRunState,
	store.ErrLeaseHeld, store.ErrLeaseNotHeld, store.ErrLockHeld, store.ErrLockNotHeld,
}

// dbErr wraps a database error with the operation, leaving store errors
// untouched. A damaged page is store.ErrCorrupt (failure.StoreCorrupt),
// and the store is corrupt from then on (Ping says so).
func (s *Store) dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if IsCorrupt(err) {
		s.corrupt.Store(true)
		return corrupt(op, err)
	}
	for _, e := range storeErrs {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// connectionExists reports whether the connection row exists; lock takes a
// row lock for the rest of the transaction where the dialect has them.
func (s *Store) connectionExists(ctx context.Context, db querier, id string, lock bool) (bool, error) {
	query := `SELECT 1 FROM connections WHERE id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	var one int
	err := s.queryRow(ctx, db, query, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// requireConnection returns store.ConnectionNotFound unless the connection
// exists.
func (s *Store) requireConnection(ctx context.Context, db querier, id string, lock bool) error {
	ok, err := s.connectionExists(ctx, db, id, lock)
	if err != nil {
		return err
	}
	if !ok {
		return store.ConnectionNotFound(id)
	}
	return nil
}

var _ store.Store = (*Store)(nil)

// IsCorrupt reports an error the backend raises for a damaged page:
// SQLite's SQLITE_CORRUPT (11) and SQLITE_NOTADB (26), in their extended
// forms too, and PostgreSQL's data_corrupted (XX001) and index_corrupted
// (XX002). It reads the drivers' errors by their methods, so this package
// imports neither driver.
func IsCorrupt(err error) bool {
	if errors.Is(err, store.ErrCorrupt) {
		return true
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 11, 26:
			return true
		}
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch pg.SQLState() {
		case "XX001", "XX002":
			return true
		}
	}
	return false
}

func corrupt(op string, err error) error {
	cause := store.ErrCorrupt
	if err != nil {
		cause = fmt.Errorf("%w: %s: %v", store.ErrCorrupt, op, err)
	}
	return &failure.Error{Code: failure.StoreCorrupt, Err: cause,
		Message: "the store is corrupt: restore it from a backup (the host is not ready until then)"}
}

// idChunk is how many ids one byIDChunks query asks for: every query has
// this many placeholders (a short chunk repeats its last id), so one
// prepared statement serves every page size.
const idChunk = 100

// byIDChunks runs query — a format with one %s for the IN list — over
// ids, idChunk at a time, and hands every row to scan.
func (s *Store) byIDChunks(ctx context.Context, query string, ids []string, scan func(*sql.Rows) error) error {
	query = fmt.Sprintf(query, placeholders(idChunk))
	for start := 0; start < len(ids); start += idChunk {
		chunk := ids[start:min(start+idChunk, len(ids))]
		args := make([]any, idChunk)
		for i := range args {
			args[i] = chunk[min(i, len(chunk)-1)]
		}
		if err := func() error {
			rows, err := s.query(ctx, s.r, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := scan(rows); err != nil {
					return err
				}
			}
			return rows.Err()
		}(); err != nil {
			return err
		}
	}
	return nil
}
