package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/connhost/connhost/host/store"
)

// recordChunk is how many records one multi-row upsert carries on a
// dialect without array binds: large enough to amortize a statement's
// overhead, small enough to stay far below every bind-parameter limit (4
// per row). A batch's remainder goes in chunks of the powers of two below
// it, so the store prepares at most recordChunkBits+1 upsert texts.
const (
	recordChunkBits = 8
	recordChunk     = 1 << recordChunkBits
)

// recordUpserts[k] upserts 1<<k records given as (stream_id, key, data,
// batch_id) rows.
var recordUpserts = func() (out [recordChunkBits + 1]string) {
	for k := range out {
		var b strings.Builder
		b.WriteString(`INSERT INTO records (stream_id, key, data, batch_id) VALUES `)
		for i := range 1 << k {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?)")
		}
		b.WriteString(recordConflict)
		out[k] = b.String()
	}
	return out
}()

// recordConflict makes an insert an upsert that keeps the row, so the key
// keeps its place in the emit order (the row's id).
const recordConflict = ` ON CONFLICT (stream_id, key) DO UPDATE SET data = excluded.data, batch_id = excluded.batch_id`

// recordArrayUpsert upserts a whole batch in one statement on a dialect
// that binds arrays: the batch, then the stream ids, keys and data, in
// emit order (unnest yields them in array order, and each new row takes
// the next id in that order).
const recordArrayUpsert = `INSERT INTO records (stream_id, key, data, batch_id)
	SELECT u.stream_id, u.key, u.data::json, ? FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u (stream_id, key, data)` +
	recordConflict

// CommitBatch implements store.Records.
func (s *Store) CommitBatch(ctx context.Context, connectionID, runID string, records []store.Record, checkpoint []byte) error {
	for i, r := range records {
		if err := r.Validate(); err != nil {
			var ie *store.InvalidError
			if errors.As(err, &ie) {
				return &store.InvalidError{Field: fmt.Sprintf("records[%d].%s", i, ie.Field), Reason: ie.Reason}
			}
			return err
		}
	}
	rows := dedupeRecords(records)
	err := s.commitBatch(ctx, connectionID, runID, records, rows, checkpoint, s.d.CopyRows != nil)
	if errors.Is(err, ErrCopyConflict) {
		// The copy met a key the stream holds and aborted the
		// transaction: commit the batch again, upserting.
		err = s.commitBatch(ctx, connectionID, runID, records, rows, checkpoint, false)
	}
	if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
		// A copy cancelled mid-stream closes its connection (pgconn has
		// no other way to stop one), and what fails then is a read on a
		// closed socket: the cause is the cancel.
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return s.dbErr("commit batch", err)
}

// commitBatch is one transaction of CommitBatch: records are the batch as
// given, rows the same deduplicated. With bulk, the rows of a stream that
// no copy has found a taken key in yet are copied (see copyRecords).
func (s *Store) commitBatch(ctx context.Context, connectionID, runID string, records, rows []store.Record, checkpoint []byte, bulk bool) error {
	return s.tx(ctx, func(tx *txn) error {
		if err := s.fenceRun(ctx, tx, connectionID, runID); err != nil {
			return err
		}
		now := s.bindTime(s.stamp())
		if len(rows) > 0 {
			if err := s.upsertRecords(ctx, tx, connectionID, runID, now, rows, bulk); err != nil {
				return err
			}
		}
		if checkpoint != nil {
			_, err := s.exec(ctx, tx, `INSERT INTO checkpoints (connection_id, state, run_id, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (connection_id) DO UPDATE SET
					state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at`,
				connectionID, checkpoint, runID, now)
			if err != nil {
				return err
			}
		}
		if len(records) > 0 {
			return s.countRecords(ctx, tx, runID, records)
		}
		return nil
	})
}

// countRecords adds records (the batch as given, duplicates too) to the
// run's count and to its counts by stream, in one statement, so the
// counts by stream always sum to the count. A run that committed records
// before the store kept counts (it was running across the upgrade to
// schema version 7) keeps none: counts of its later commits alone would
// not sum to its count. The caller holds the run's lease row (fenceRun),
// so no other commit of the run writes between this read and this write.
func (s *Store) countRecords(ctx context.Context, tx *txn, runID string, records []store.Record) error {
	var (
		before int64
		counts map[string]int64
	)
	if err := s.queryRow(ctx, tx, `SELECT records, stream_records FROM runs WHERE id = ?`+s.d.ForUpdate, runID).
		Scan(&before, streamRecordsCol{&counts}); err != nil {
		return err
	}
	var col any
	if before == 0 || counts != nil {
		var err error
		if col, err = encodeStreamRecords(store.CountStreams(counts, records)); err != nil {
			return err
		}
	}
	_, err := s.exec(ctx, tx, `UPDATE runs SET records = records + ?, stream_records = ? WHERE id = ?`,
		int64(len(records)), col, runID)
	return err
}

// upsertRecords writes rows (distinct stream and key) as one new batch of
// the run; with bulk, by copyRecords where it may.
func (s *Store) upsertRecords(ctx context.Context, tx *txn, connID, runID string, now any, rows []store.Record, bulk bool) error {
	streams, err := s.streamIDs(ctx, tx, connID, rows)
	if err != nil {
		return err
	}
	var batch int64
	if err := s.queryRow(ctx, tx, `INSERT INTO record_batches (connection_id, run_id, updated_at) VALUES (?, ?, ?) RETURNING id`,
		connID, runID, now).Scan(&batch); err != nil {
		return err
	}
	if bulk && s.copyable(streams) {
		return s.copyRecords(ctx, tx, batch, streams, rows)
	}
	if s.d.ArrayBinds {
		ids := make([]int64, len(rows))
		keys := make([]string, len(rows))
		data := make([]string, len(rows))
		for i, r := range rows {
			ids[i], keys[i], data[i] = streams[r.Stream], r.Key, string(r.Data)
		}
		_, err := s.exec(ctx, tx, recordArrayUpsert, batch, ids, keys, data)
		return err
	}
	args := make([]any, 0, 4*recordChunk)
	for start := 0; start < len(rows); {
		k := recordChunkBits
		for 1<<k > len(rows)-start {
			k--
		}
		chunk := rows[start : start+1<<k]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, streams[r.Stream], r.Key, string(r.Data), batch)
		}
		if _, err := s.exec(ctx, tx, recordUpserts[k], args...); err != nil {
			return err
		}
		start += len(chunk)
	}
	return nil
}

// ErrCopyConflict is what Dialect.CopyRows wraps when a copied row's
// unique key is taken (PostgreSQL's unique_violation): the transaction is
// aborted and CommitBatch writes the batch again with an upsert.
var ErrCopyConflict = errors.New("sqlstore: a copied row's key exists")

// recordColumns are the columns copyRecords loads, in the order of its rows.
var recordColumns = []string{"stream_id", "key", "data", "batch_id"}

// copyable reports whether every stream of a batch is still copied into:
// none has had a copy meet a key it holds.
func (s *Store) copyable(streams map[string]int64) bool {
	for _, id := range streams {
		if _, upsert := s.upserted.Load(id); upsert {
			return false
		}
	}
	return true
}

// copyRecords writes rows (distinct stream and key) as batch with the
// dialect's bulk load, which the server writes much faster than an upsert
// (it skips the speculative insertion each row of INSERT … ON CONFLICT
// costs). Rows are copied in order, so each takes the next id (its place
// in the emit order), as the upsert gives a new key. The copy only
// inserts: if a key exists it fails with ErrCopyConflict, aborting the
// transaction, and the batch's streams are upserted from then on (a
// stream written again is likely to be written again).
func (s *Store) copyRecords(ctx context.Context, tx *txn, batch int64, streams map[string]int64, rows []store.Record) error {
	load := make([][]any, len(rows))
	vals := make([]any, 0, 4*len(rows))
	for i, r := range rows {
		vals = append(vals, streams[r.Stream], r.Key, []byte(r.Data), batch)
		load[i] = vals[len(vals)-4 : len(vals) : len(vals)]
	}
	s.statements.Add(1)
	err := tx.conn.Raw(func(dc any) error {
		return s.d.CopyRows(ctx, dc, "records", recordColumns, load)
	})
	if errors.Is(err, ErrCopyConflict) {
		for _, id := range streams {
			s.upserted.Store(id, struct{}{})
		}
	}
	return err
}

// streamIDs returns the ids of the streams rows name, interning the ones
// the connection has no id for yet.
func (s *Store) streamIDs(ctx context.Context, tx *txn, connID string, rows []store.Record) (map[string]int64, error) {
	ids := map[string]int64{}
	for _, r := range rows {
		if _, ok := ids[r.Stream]; ok {
			continue
		}
		var id int64
		err := s.queryRow(ctx, tx, `SELECT id FROM streams WHERE connection_id = ? AND name = ?`, connID, r.Stream).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			err = s.queryRow(ctx, tx, `INSERT INTO streams (connection_id, name) VALUES (?, ?) RETURNING id`, connID, r.Stream).Scan(&id)
		}
		if err != nil {
			return nil, err
		}
		ids[r.Stream] = id
	}
	return ids, nil
}

// fenceRun lets only the running run that holds the connection's lease
// write, so a run whose lease was reclaimed or taken over cannot move the
// connection's data after the fact.
func (s *Store) fenceRun(ctx context.Context, tx *txn, connID, runID string) error {
	r, err := s.getRun(ctx, tx, runID, false)
	if err != nil {
		return err
	}
	if r.ConnectionID != connID {
		return fmt.Errorf("%w: %q is not a run of connection %q", store.ErrRunNotFound, runID, connID)
	}
	if r.Status != store.RunRunning {
		return &store.RunStateError{RunID: runID, Op: "commit", Status: r.Status}
	}
	l, ok, err := s.getLease(ctx, tx, connID, true)
	if err != nil {
		return err
	}
	if !ok || l.RunID != runID {
		return leaseNotHeld(connID, runID)
	}
	return nil
}

// dedupeRecords keeps the last record of each (stream, key), in first-seen
// order: one INSERT … ON CONFLICT DO UPDATE may not touch a row twice on
// PostgreSQL, and the last write wins anyway.
func dedupeRecords(in []store.Record) []store.Record {
	type k struct{ stream, key string }
	idx := make(map[k]int, len(in))
	out := make([]store.Record, 0, len(in))
	for _, r := range in {
		if i, ok := idx[k{r.Stream, r.Key}]; ok {
			out[i] = r
			continue
		}
		idx[k{r.Stream, r.Key}] = len(out)
		out = append(out, r)
	}
	return out
}

// GetCheckpoint implements store.Records.
func (s *Store) GetCheckpoint(ctx context.Context, connectionID string) ([]byte, bool, error) {
	var state []byte
	err := s.queryRow(ctx, s.r, `SELECT state FROM checkpoints WHERE connection_id = ?`, connectionID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.requireConnection(ctx, s.r, connectionID, false); err != nil {
			return nil, false, s.dbErr("get checkpoint", err)
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.dbErr("get checkpoint", err)
	}
	if state == nil {
		state = []byte{} // an empty checkpoint is still a checkpoint
	}
	return state, true, nil
}

// LastCheckpoint implements store.Records.
func (s *Store) LastCheckpoint(ctx context.Context, connectionID string) (store.Checkpoint, bool, error) {
	cp, ok, err := s.lastCheckpoint(ctx, s.r, connectionID, false)
	return cp, ok, s.dbErr("last checkpoint", err)
}

func (s *Store) lastCheckpoint(ctx context.Context, db querier, connectionID string, lock bool) (store.Checkpoint, bool, error) {
	cp := store.Checkpoint{ConnectionID: connectionID}
	query := `SELECT state, run_id, updated_at FROM checkpoints WHERE connection_id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	err := s.queryRow(ctx, db, query, connectionID).Scan(&cp.State, &cp.RunID, timeCol{&cp.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.requireConnection(ctx, db, connectionID, false); err != nil {
			return store.Checkpoint{ConnectionID: connectionID}, false, err
		}
		return store.Checkpoint{ConnectionID: connectionID}, false, nil
	}
	if err != nil {
		return store.Checkpoint{ConnectionID: connectionID}, false, err
	}
	if cp.State == nil {
		cp.State = []byte{}
	}
	return cp, true, nil
}

// ResetCheckpoint implements store.Records.
func (s *Store) ResetCheckpoint(ctx context.Context, connectionID string) (store.Checkpoint, bool, error) {
	var (
		out store.Checkpoint
		had bool
	)
	err := s.tx(ctx, func(tx *txn) error {
		if _, err := s.getConnection(ctx, tx, connectionID, true); err != nil {
			return err
		}
		l, ok, err := s.getLease(ctx, tx, connectionID, true)
		if err != nil {
			return err
		}
		if ok && !l.Expired(s.stamp()) {
			return store.RunActive(l)
		}
		out, had, err = s.lastCheckpoint(ctx, tx, connectionID, true)
		if err != nil || !had {
			return err
		}
		_, err = s.exec(ctx, tx, `DELETE FROM checkpoints WHERE connection_id = ?`, connectionID)
		return err
	})
	if err != nil {
		return store.Checkpoint{ConnectionID: connectionID}, false, s.dbErr("reset checkpoint", err)
	}
	return out, had, nil
}

// ListRecords implements store.Records. A page walks the connection's
// streams in name order and each one's records in emit order, one index
// range per stream, until it has a record more than the limit (the sign
// of a next page).
func (s *Store) ListRecords(ctx context.Context, q store.RecordQuery) (store.RecordPage, error) {
	var (
		from  string
		after int64
	)
	if q.Cursor != "" {
		parts, err := decodeCursor(q.Cursor, "records", 2)
		if err != nil {
			return store.RecordPage{}, err
		}
		if after, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
			return store.RecordPage{}, errCursor
		}
		from = parts[0]
	}
	limit := store.PageLimit(q.Limit)
	streams, err := s.listStreams(ctx, q.ConnectionID, q.Stream, from)
	if err != nil {
		return store.RecordPage{}, s.dbErr("list records", err)
	}
	var (
		page store.RecordPage
		ids  []int64
	)
	for _, st := range streams {
		if len(page.Records) > limit {
			break
		}
		var past int64
		if st.name == from {
			past = after
		}
		if err := s.listStream(ctx, q.ConnectionID, st, past, limit+1-len(page.Records), &page, &ids); err != nil {
			return store.RecordPage{}, s.dbErr("list records", err)
		}
	}
	if len(page.Records) == 0 && q.Cursor == "" {
		if err := s.requireConnection(ctx, s.r, q.ConnectionID, false); err != nil {
			return store.RecordPage{}, s.dbErr("list records", err)
		}
	}
	if len(page.Records) > limit {
		page.Records = page.Records[:limit]
		page.Next = encodeCursor("records", page.Records[limit-1].Stream, strconv.FormatInt(ids[limit-1], 10))
	}
	return page, nil
}

type streamRef struct {
	id   int64
	name string
}

// listStreams returns the connection's streams named from on (all of them
// with from ""), or the one named only, in name order.
func (s *Store) listStreams(ctx context.Context, connID, only, from string) ([]streamRef, error) {
	query, args := `SELECT id, name FROM streams WHERE connection_id = ? AND name >= ? ORDER BY name`, []any{connID, from}
	if only != "" {
		query, args = `SELECT id, name FROM streams WHERE connection_id = ? AND name = ? AND name >= ?`, []any{connID, only, from}
	}
	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []streamRef
	for rows.Next() {
		var st streamRef
		if err := rows.Scan(&st.id, &st.name); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// listStream appends up to n records of stream st after id past to page,
// and their ids to ids.
func (s *Store) listStream(ctx context.Context, connID string, st streamRef, past int64, n int, page *store.RecordPage, ids *[]int64) error {
	rows, err := s.query(ctx, s.r, `SELECT r.id, r.key, r.data, b.run_id, b.updated_at
		FROM records r JOIN record_batches b ON b.id = r.batch_id
		WHERE r.stream_id = ? AND r.id > ? ORDER BY r.id LIMIT ?`, st.id, past, n)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r := store.StoredRecord{ConnectionID: connID, Stream: st.name}
		var id int64
		if err := rows.Scan(&id, &r.Key, (*[]byte)(&r.Data), &r.RunID, timeCol{&r.UpdatedAt}); err != nil {
			return err
		}
		page.Records = append(page.Records, r)
		*ids = append(*ids, id)
	}
	return rows.Err()
}
