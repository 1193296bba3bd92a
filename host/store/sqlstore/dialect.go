package sqlstore

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Placeholders is a dialect's bind-parameter style.
type Placeholders int

// Placeholder styles.
const (
	QuestionMarks Placeholders = iota // ?, ?, ? (SQLite)
	Dollars                           // $1, $2, $3 (PostgreSQL)
)

// Dialect describes what differs between the SQL databases sqlstore runs on.
type Dialect struct {
	// Name is a short label used in errors ("sqlite", "postgres").
	Name string
	// Goose is the goose dialect the migrations are applied with.
	Goose goose.Dialect
	// Migrations holds the dialect's goose migration files.
	Migrations fs.FS
	// Placeholders is the bind-parameter style queries are rebound to.
	Placeholders Placeholders
	// TimeAsText binds times as fixed-width RFC 3339 text (TimeLayout),
	// for databases without a native timestamp type; otherwise times are
	// bound as time.Time.
	TimeAsText bool
	// TimePrecision is what the database keeps of a time; the store
	// truncates every time it stamps to it so values read back equal the
	// ones it returned.
	TimePrecision time.Duration
	// ForUpdate is appended to the SELECTs of read-modify-write
	// transactions (" FOR UPDATE" on PostgreSQL; "" on SQLite, whose
	// writers are serialized).
	ForUpdate string
	// SkipLocked is appended to the SELECT that picks rows to claim
	// (" FOR UPDATE SKIP LOCKED" on PostgreSQL, so concurrent claimers
	// take different rows without waiting; "" on SQLite).
	SkipLocked string
	// TimeType and IntType are the type names a bound time and a bound
	// integer are cast to where a statement cannot infer them (rows of a
	// VALUES list): "TEXT" and "INTEGER" on SQLite, "timestamptz" and
	// "bigint" on PostgreSQL.
	TimeType, IntType string
	// RelaxConn are the statements run on the writer connection before
	// and after a relaxed transaction (SQLite: synchronous NORMAL, then
	// FULL again); RelaxTx is run first inside one (PostgreSQL:
	// synchronous_commit off). A relaxed transaction commits without
	// waiting for the disk: a power loss may drop it, never reorder it
	// after a later durable one. Only bookkeeping that heals itself after
	// a crash (claims and completions of the dispatch queue) is relaxed.
	RelaxConn [2]string
	RelaxTx   string
	// ArrayBinds says the driver binds Go slices as SQL arrays (pgx): a
	// batch of records is upserted from unnest($1::bigint[], …) in one
	// statement instead of multi-row VALUES chunks.
	ArrayBinds bool
	// CopyRows, when set, bulk-loads rows (in order) into the named
	// columns of table through conn, the driver connection of the open
	// write transaction (from sql.Conn.Raw), inside that transaction:
	// PostgreSQL's COPY. A row whose unique key the table holds fails it
	// with an error wrapping ErrCopyConflict. CommitBatch copies the
	// records of a stream in until a copy meets a key the stream holds,
	// and upserts them from then on.
	CopyRows func(ctx context.Context, conn any, table string, columns []string, rows [][]any) error
	// MigrationLock, when set, returns the lock goose holds while it
	// migrates, so hosts that boot together migrate once (a PostgreSQL
	// advisory lock); nil for a database one process owns.
	MigrationLock func() (lock.SessionLocker, error)
}

// Validate checks that the dialect is complete.
func (d Dialect) Validate() error {
	switch {
	case d.Name == "":
		return errors.New("sqlstore: dialect: Name is required")
	case d.Goose == "":
		return errors.New("sqlstore: dialect: Goose is required")
	case d.Migrations == nil:
		return errors.New("sqlstore: dialect: Migrations is required")
	case d.Placeholders != QuestionMarks && d.Placeholders != Dollars:
		return errors.New("sqlstore: dialect: unknown Placeholders")
	case d.TimePrecision <= 0:
		return errors.New("sqlstore: dialect: TimePrecision must be positive")
	case d.TimeType == "" || d.IntType == "":
		return errors.New("sqlstore: dialect: TimeType and IntType are required")
	}
	return nil
}

// Rebind rewrites the "?" placeholders of query into the dialect's style.
// Queries in this package hold no "?" inside string literals.
func (d Dialect) Rebind(query string) string {
	if d.Placeholders != Dollars || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
