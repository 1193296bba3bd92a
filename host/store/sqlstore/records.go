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

// recordChunk is how many records one INSERT carries: large enough to
// amortize statement overhead, small enough to stay far below every
// dialect's bind-parameter limit (7 per row).
const recordChunk = 200

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
	err := s.tx(ctx, func(tx *txn) error {
		if err := s.fenceRun(ctx, tx, connectionID, runID); err != nil {
			return err
		}
		now := s.bindTime(s.stamp())
		base, err := s.takeRecordSeqs(ctx, tx, connectionID, len(rows))
		if err != nil {
			return err
		}
		for start := 0; start < len(rows); start += recordChunk {
			chunk := rows[start:min(start+recordChunk, len(rows))]
			var b strings.Builder
			b.WriteString(`INSERT INTO records (connection_id, stream, key, data, run_id, updated_at, seq) VALUES `)
			args := make([]any, 0, 7*len(chunk))
			for i, r := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
				args = append(args, connectionID, r.Stream, r.Key, string(r.Data), runID, now, base+int64(start+i)+1)
			}
			b.WriteString(` ON CONFLICT (connection_id, stream, key) DO UPDATE SET
				data = excluded.data, run_id = excluded.run_id, updated_at = excluded.updated_at`)
			if _, err := s.exec(ctx, tx, b.String(), args...); err != nil {
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
			_, err := s.exec(ctx, tx, `UPDATE runs SET records = records + ? WHERE id = ?`, int64(len(records)), runID)
			return err
		}
		return nil
	})
	return s.dbErr("commit batch", err)
}

// takeRecordSeqs reserves n places in the connection's emit order and
// returns the last one taken before them. A new key takes its place; a
// key written again keeps its first one (the upsert leaves seq alone), so
// records list in the order the connector first emitted them.
func (s *Store) takeRecordSeqs(ctx context.Context, tx *txn, connID string, n int) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	if _, err := s.exec(ctx, tx, `UPDATE connections SET record_seq = record_seq + ? WHERE id = ?`, int64(n), connID); err != nil {
		return 0, err
	}
	var top int64
	if err := s.queryRow(ctx, tx, `SELECT record_seq FROM connections WHERE id = ?`, connID).Scan(&top); err != nil {
		return 0, err
	}
	return top - int64(n), nil
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

// ListRecords implements store.Records.
func (s *Store) ListRecords(ctx context.Context, q store.RecordQuery) (store.RecordPage, error) {
	where, args := []string{`connection_id = ?`}, []any{q.ConnectionID}
	if q.Stream != "" {
		where, args = append(where, `stream = ?`), append(args, q.Stream)
	}
	if q.Cursor != "" {
		parts, err := decodeCursor(q.Cursor, "records", 3)
		if err != nil {
			return store.RecordPage{}, err
		}
		seq, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return store.RecordPage{}, errCursor
		}
		where = append(where, `(stream, seq, key) > (?, ?, ?)`) // a row value: a records_order seek
		args = append(args, parts[0], seq, parts[2])
	}
	limit := store.PageLimit(q.Limit)
	rows, err := s.query(ctx, s.r, `SELECT stream, key, data, run_id, updated_at, seq FROM records WHERE `+
		strings.Join(where, ` AND `)+` ORDER BY stream, seq, key LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return store.RecordPage{}, s.dbErr("list records", err)
	}
	defer rows.Close()
	var (
		page store.RecordPage
		seqs []int64
	)
	for rows.Next() {
		r := store.StoredRecord{ConnectionID: q.ConnectionID}
		var seq int64
		if err := rows.Scan(&r.Stream, &r.Key, (*[]byte)(&r.Data), &r.RunID, timeCol{&r.UpdatedAt}, &seq); err != nil {
			return store.RecordPage{}, s.dbErr("list records", err)
		}
		page.Records = append(page.Records, r)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return store.RecordPage{}, s.dbErr("list records", err)
	}
	if len(page.Records) == 0 && q.Cursor == "" {
		if err := s.requireConnection(ctx, s.r, q.ConnectionID, false); err != nil {
			return store.RecordPage{}, s.dbErr("list records", err)
		}
	}
	if len(page.Records) > limit {
		page.Records = page.Records[:limit]
		last := page.Records[limit-1]
		page.Next = encodeCursor("records", last.Stream, strconv.FormatInt(seqs[limit-1], 10), last.Key)
	}
	return page, nil
}
