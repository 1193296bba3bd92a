// Package sqlstore implements store.Store over database/sql, shared by the
// SQL backends (SQLite now, PostgreSQL later). A Dialect carries what
// differs between them: placeholder style, how times are bound and how
// precise they are, row locks, and the embedded migrations goose applies.
//
// Queries are written once with "?" placeholders, in the SQL subset both
// dialects share (ON CONFLICT … DO UPDATE, RETURNING, LIMIT), and rebound to
// "$n" for PostgreSQL.
//
// Writes run in transactions on Config.DB; reads may go to Config.ReadDB. A
// SQLite backend gives DB a single connection so writers queue in the pool
// instead of failing with SQLITE_BUSY, and ReadDB several read-only ones
// that WAL lets proceed while a write is in flight. Read-modify-write
// transactions lock the rows they read with Dialect.ForUpdate where the
// database has row locks, and compare-and-swap where a race would otherwise
// go unnoticed.
//
// A transaction's statements and its wait for a connection follow the
// caller's context, its COMMIT does not: an error from a write means it did
// not commit, even when the context was cancelled at the last moment.
// Statements are prepared once per pool connection and reused.
//
// Records are kept compact (migration 6): a stream is interned once per
// connection in streams, and a record row holds its stream's integer id,
// key, data and the id of the record_batches row (run and time) of the
// commit that last wrote it. The row's own id is its place in the emit
// order: a new key takes the next id, an upsert keeps the row. SQLite
// upserts a batch in multi-row statements of fixed sizes; PostgreSQL
// (Dialect.ArrayBinds) in one INSERT … SELECT FROM unnest of arrays.
//
// A run's committed records are counted in all (runs.records) and by
// stream (runs.stream_records, migration 7: a JSON object, NULL until the
// run's first record) in the transaction of each commit, so the counts by
// stream always sum to the total.
package sqlstore
