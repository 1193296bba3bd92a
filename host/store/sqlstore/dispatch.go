package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// The dispatch queue. Lock order, so PostgreSQL never deadlocks two
// writers: the connection row, then its occurrence, then runs, then
// leases. RecordTicks sorts its ticks by connection id for the same
// reason.

const occurrenceCols = `connection_id, id, trigger, due_at, run_at, schedule_gen, attempt, retry_of, run_id,
	state, claimed_by, claimed_at, created_at`

func scanOccurrence(row interface{ Scan(...any) error }) (store.Occurrence, error) {
	var o store.Occurrence
	err := row.Scan(&o.ConnectionID, &o.ID, &o.Trigger, timeCol{&o.DueAt}, timeCol{&o.RunAt}, &o.ScheduleGen,
		&o.Attempt, &o.RetryOf, &o.RunID, &o.State, &o.ClaimedBy, timeCol{&o.ClaimedAt}, timeCol{&o.CreatedAt})
	return o, err
}

func collectOccurrences(rows *sql.Rows) ([]store.Occurrence, error) {
	defer rows.Close()
	var out []store.Occurrence
	for rows.Next() {
		o, err := scanOccurrence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// getOccurrence returns the connection's occurrence and whether it has one.
func (s *Store) getOccurrence(ctx context.Context, db querier, connID string, lock bool) (store.Occurrence, bool, error) {
	query := `SELECT ` + occurrenceCols + ` FROM occurrences WHERE connection_id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	o, err := scanOccurrence(s.queryRow(ctx, db, query, connID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Occurrence{}, false, nil
	}
	return o, err == nil, err
}

func priority(t store.RunTrigger) int {
	if t == store.TriggerManual {
		return 0
	}
	return 1
}

func (s *Store) insertOccurrence(ctx context.Context, tx *txn, o store.Occurrence, onConflictNothing bool) (bool, error) {
	query := `INSERT INTO occurrences (connection_id, id, trigger, priority, due_at, run_at, schedule_gen, attempt,
		retry_of, run_id, state, claimed_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)`
	if onConflictNothing {
		query += ` ON CONFLICT (connection_id) DO NOTHING`
	}
	res, err := s.exec(ctx, tx, query, o.ConnectionID, o.ID, string(o.Trigger), priority(o.Trigger),
		s.bindTime(o.DueAt), s.bindTime(o.RunAt), o.ScheduleGen, o.Attempt, o.RetryOf, o.RunID,
		string(store.OccurrencePending), s.bindTime(o.CreatedAt))
	if err != nil {
		return false, err
	}
	n, err := affected(res)
	return n > 0, err
}

func (s *Store) countCoalesced(ctx context.Context, tx *txn, connID string, due time.Time) error {
	_, err := s.exec(ctx, tx, `UPDATE connections SET coalesced_ticks = coalesced_ticks + 1, last_coalesced_at = ? WHERE id = ?`,
		s.bindTime(due), connID)
	return err
}

// EnqueueManual implements store.Dispatch.
func (s *Store) EnqueueManual(ctx context.Context, m store.ManualRun) (store.Run, error) {
	if err := m.Validate(); err != nil {
		return store.Run{}, err
	}
	var out store.Run
	err := s.tx(ctx, func(tx *txn) error {
		c, err := s.getConnection(ctx, tx, m.ConnectionID, true)
		if err != nil {
			return err
		}
		if c.State == store.ConnectionRevoked {
			return failure.New(failure.ConnectionRevoked, "connection %s is revoked", c.ID)
		}
		cur, ok, err := s.getOccurrence(ctx, tx, c.ID, true)
		if err != nil {
			return err
		}
		if ok {
			if err := s.makeRoom(ctx, tx, cur); err != nil {
				return err
			}
		}
		now := s.stamp()
		runID, err := s.newID("run_", now)
		if err != nil {
			return err
		}
		occID, err := s.newID("occ_", now)
		if err != nil {
			return err
		}
		out = store.Run{ID: runID, ConnectionID: c.ID, Trigger: store.TriggerManual, Attempt: 1,
			Status: store.RunQueued, CreatedAt: now}
		if _, err := s.insertOccurrence(ctx, tx, store.Occurrence{ConnectionID: c.ID, ID: occID, Trigger: store.TriggerManual,
			DueAt: now, RunAt: now, ScheduleGen: c.ScheduleGen, Attempt: 1, RunID: runID, CreatedAt: now}, false); err != nil {
			return err
		}
		return s.insertRun(ctx, tx, out)
	})
	return out, s.dbErr("enqueue manual run", err)
}

// makeRoom clears the connection's occurrence for a manual run, or
// refuses: a pending scheduled or retry occurrence is replaced (counted
// as coalesced), one whose run already ended is left over from a worker
// about to complete it, and anything else is a run that has not ended.
func (s *Store) makeRoom(ctx context.Context, tx *txn, cur store.Occurrence) error {
	busy := &store.QueuedError{ConnectionID: cur.ConnectionID, RunID: cur.RunID, State: cur.State}
	switch {
	case cur.State == store.OccurrencePending && cur.Trigger != store.TriggerManual:
		if err := s.countCoalesced(ctx, tx, cur.ConnectionID, cur.DueAt); err != nil {
			return err
		}
	case cur.State == store.OccurrenceClaimed && cur.RunID != "":
		r, err := s.getRun(ctx, tx, cur.RunID, false)
		if err != nil && !errors.Is(err, store.ErrRunNotFound) {
			return err
		}
		if err == nil && !r.Status.Terminal() {
			return store.RunBusy(busy)
		}
	default:
		return store.RunBusy(busy)
	}
	_, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE connection_id = ? AND id = ?`, cur.ConnectionID, cur.ID)
	return err
}

// ClaimDue implements store.Dispatch.
func (s *Store) ClaimDue(ctx context.Context, holder string, now time.Time, limit int) ([]store.Occurrence, error) {
	if holder == "" {
		return nil, &store.InvalidError{Field: "holder", Reason: "required"}
	}
	if limit <= 0 {
		return nil, nil
	}
	var out []store.Occurrence
	// Relaxed: a claim lost to a power loss is a claim never made.
	err := s.txRelaxed(ctx, func(tx *txn) error {
		claimedAt := s.stamp()
		// Two range scans of (state, priority, run_at): manual runs, due
		// at once; then what is due by now, earliest first.
		for _, p := range []int{0, 1} {
			n := limit - len(out)
			if n == 0 {
				break
			}
			due := ``
			args := []any{string(store.OccurrenceClaimed), holder, s.bindTime(claimedAt), p}
			if p == 1 {
				due = ` AND run_at <= ?`
				args = append(args, s.bindTime(now))
			}
			// state is a literal: the planner then uses the partial index
			// of pending occurrences.
			rows, err := s.query(ctx, tx, `UPDATE occurrences SET state = ?, claimed_by = ?, claimed_at = ?
				WHERE connection_id IN (SELECT connection_id FROM occurrences WHERE state = 'pending' AND priority = ?`+due+`
					ORDER BY run_at LIMIT ?`+s.d.SkipLocked+`)
				RETURNING `+occurrenceCols, append(args, n)...)
			if err != nil {
				return err
			}
			got, err := collectOccurrences(rows)
			if err != nil {
				return err
			}
			out = append(out, got...)
		}
		for _, o := range out {
			if o.Trigger != store.TriggerManual || o.RunID == "" {
				continue
			}
			if _, err := s.exec(ctx, tx, `UPDATE runs SET host_id = ? WHERE id = ? AND status = ?`,
				holder, o.RunID, string(store.RunQueued)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.dbErr("claim due", err)
	}
	slices.SortFunc(out, func(a, b store.Occurrence) int {
		return cmp.Or(cmp.Compare(priority(a.Trigger), priority(b.Trigger)), a.RunAt.Compare(b.RunAt),
			strings.Compare(a.ConnectionID, b.ConnectionID))
	})
	return out, nil
}

// NextRunAt implements store.Dispatch.
func (s *Store) NextRunAt(ctx context.Context) (time.Time, bool, error) {
	// The earliest of each priority: two index lookups.
	var t time.Time
	err := s.queryRow(ctx, s.r, `SELECT MIN(m) FROM (
			SELECT MIN(run_at) AS m FROM occurrences WHERE state = 'pending' AND priority = 0
			UNION ALL SELECT MIN(run_at) AS m FROM occurrences WHERE state = 'pending' AND priority = 1) AS earliest`).Scan(timeCol{&t})
	if err != nil {
		return time.Time{}, false, s.dbErr("next run at", err)
	}
	return t, !t.IsZero(), nil
}

// unstarted selects the claimed occurrences whose run has not started: no
// run row yet, or a manual run still queued. Those can be handed back.
const unstarted = `(run_id = '' OR (trigger = 'manual' AND run_id IN (SELECT id FROM runs WHERE status = 'queued')))`

// release returns the unstarted occurrences claimed by holder (and, when
// occID is set, only that one of connID) to pending; their queued manual
// runs are on no host again.
func (s *Store) release(ctx context.Context, tx *txn, holder, connID, occID string) (int64, error) {
	where := `claimed_by = ? AND ` + unstarted
	args := []any{holder}
	if occID != "" {
		where += ` AND connection_id = ? AND id = ?`
		args = append(args, connID, occID)
	}
	if _, err := s.exec(ctx, tx, `UPDATE runs SET host_id = '' WHERE status = ? AND trigger = ?
		AND id IN (SELECT run_id FROM occurrences WHERE `+where+`)`,
		append([]any{string(store.RunQueued), string(store.TriggerManual)}, args...)...); err != nil {
		return 0, err
	}
	res, err := s.exec(ctx, tx, `UPDATE occurrences SET state = ?, claimed_by = '', claimed_at = NULL WHERE `+where,
		append([]any{string(store.OccurrencePending)}, args...)...)
	if err != nil {
		return 0, err
	}
	return affected(res)
}

// ReleaseOccurrence implements store.Dispatch.
func (s *Store) ReleaseOccurrence(ctx context.Context, connectionID, occurrenceID, holder string) error {
	err := s.tx(ctx, func(tx *txn) error {
		n, err := s.release(ctx, tx, holder, connectionID, occurrenceID)
		if err == nil && n == 0 {
			return fmt.Errorf("%w: occurrence %q of connection %q", store.ErrOccurrenceLost, occurrenceID, connectionID)
		}
		return err
	})
	return s.dbErr("release occurrence", err)
}

// ReleaseClaims implements store.Dispatch.
func (s *Store) ReleaseClaims(ctx context.Context, holder string) (int, error) {
	if holder == "" {
		return 0, &store.InvalidError{Field: "holder", Reason: "required"}
	}
	var n int64
	err := s.tx(ctx, func(tx *txn) error {
		var err error
		n, err = s.release(ctx, tx, holder, "", "")
		return err
	})
	return int(n), s.dbErr("release claims", err)
}

// CompleteOccurrences implements store.Dispatch.
func (s *Store) CompleteOccurrences(ctx context.Context, cs []store.Completion) ([]store.CompletionOutcome, error) {
	for i, c := range cs {
		if c.Retry != nil && (c.Retry.Attempt < 2 || c.Retry.RetryOf == "" || c.Retry.RunAt.IsZero()) {
			return nil, &store.InvalidError{Field: fmt.Sprintf("completions[%d].retry", i), Reason: "needs attempt >= 2, retry_of and run_at"}
		}
	}
	order := make([]int, len(cs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(cs[a].ConnectionID, cs[b].ConnectionID) })
	out := make([]store.CompletionOutcome, len(cs))
	// Done ones are deleted in chunks, one statement each, by holder;
	// retries one by one.
	done := map[string][]int{}
	var retries []int
	for _, i := range order {
		if cs[i].Retry == nil {
			done[cs[i].Holder] = append(done[cs[i].Holder], i)
		} else {
			retries = append(retries, i)
		}
	}
	// Relaxed: a completion lost to a power loss leaves a claim of a run
	// that ended, which the host's next start (or a survivor's reap)
	// removes.
	err := s.txRelaxed(ctx, func(tx *txn) error {
		now := s.stamp()
		for holder, idx := range done {
			for len(idx) > 0 {
				n := chunkSize(len(idx))
				if err := s.completeDone(ctx, tx, holder, cs, idx[:n], out); err != nil {
					return err
				}
				idx = idx[n:]
			}
		}
		for _, i := range retries {
			o, err := s.complete(ctx, tx, cs[i], now)
			if err != nil {
				return err
			}
			out[i] = o
		}
		return nil
	})
	if err != nil {
		return nil, s.dbErr("complete occurrences", err)
	}
	return out, nil
}

// completeDone deletes the occurrences of done completions of one
// holder, fenced on its claims; an id belongs to one connection, so the
// two IN lists select exactly the pairs.
func (s *Store) completeDone(ctx context.Context, tx *txn, holder string, cs []store.Completion, idx []int, out []store.CompletionOutcome) error {
	args := make([]any, 0, 2*len(idx)+1)
	for _, i := range idx {
		args = append(args, cs[i].ConnectionID)
	}
	for _, i := range idx {
		args = append(args, cs[i].OccurrenceID)
	}
	gone, err := s.ids(ctx, tx, `DELETE FROM occurrences WHERE connection_id IN (`+placeholders(len(idx))+`)
		AND id IN (`+placeholders(len(idx))+`) AND state = 'claimed' AND claimed_by = ?
		RETURNING id`, append(args, holder)...)
	if err != nil {
		return err
	}
	for _, i := range idx {
		out[i] = store.CompletionLost
		if gone[cs[i].OccurrenceID] {
			out[i] = store.CompletionDone
		}
	}
	return nil
}

// complete turns a claimed occurrence into the pending retry of its run,
// or removes it when the connection moved on.
func (s *Store) complete(ctx context.Context, tx *txn, c store.Completion, now time.Time) (store.CompletionOutcome, error) {
	conn, err := s.getConnection(ctx, tx, c.ConnectionID, true)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrConnectionNotFound) {
		return "", err
	}
	o, ok, err := s.getOccurrence(ctx, tx, c.ConnectionID, true)
	if err != nil {
		return "", err
	}
	if !ok || o.ID != c.OccurrenceID || o.State != store.OccurrenceClaimed || o.ClaimedBy != c.Holder {
		return store.CompletionLost, nil
	}
	if !exists || conn.State != store.ConnectionActive || conn.ScheduleGen != o.ScheduleGen {
		_, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE connection_id = ? AND id = ?`, o.ConnectionID, o.ID)
		return store.CompletionDone, err
	}
	id, err := s.newID("occ_", now)
	if err != nil {
		return "", err
	}
	at := s.trunc(c.Retry.RunAt)
	_, err = s.exec(ctx, tx, `UPDATE occurrences SET id = ?, trigger = ?, priority = ?, due_at = ?, run_at = ?, attempt = ?,
		retry_of = ?, run_id = '', state = ?, claimed_by = '', claimed_at = NULL, created_at = ?
		WHERE connection_id = ? AND id = ?`,
		id, string(store.TriggerRetry), priority(store.TriggerRetry), s.bindTime(at), s.bindTime(at), c.Retry.Attempt,
		c.Retry.RetryOf, string(store.OccurrencePending), s.bindTime(now), o.ConnectionID, o.ID)
	return store.CompletionRetried, err
}

// CancelQueuedRun implements store.Dispatch.
func (s *Store) CancelQueuedRun(ctx context.Context, runID string, res store.RunResult) (store.Run, error) {
	if err := res.Validate(); err != nil {
		return store.Run{}, err
	}
	var out store.Run
	err := s.tx(ctx, func(tx *txn) error {
		rows, err := s.query(ctx, tx, `SELECT `+occurrenceCols+` FROM occurrences WHERE run_id = ?`+s.d.ForUpdate, runID)
		if err != nil {
			return err
		}
		occs, err := collectOccurrences(rows)
		if err != nil {
			return err
		}
		r, err := s.getRun(ctx, tx, runID, true)
		if err != nil {
			return err
		}
		if r.Status != store.RunQueued || !slices.Contains(res.Status.FinishableFrom(), r.Status) {
			return &store.RunStateError{RunID: runID, Op: "cancel queued", Status: r.Status}
		}
		for _, o := range occs {
			if o.State == store.OccurrenceClaimed {
				return fmt.Errorf("%w: run %q was claimed by host %q", store.ErrOccurrenceLost, runID, o.ClaimedBy)
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE connection_id = ? AND id = ?`, o.ConnectionID, o.ID); err != nil {
				return err
			}
		}
		r.Status, r.FailureCode, r.FailureMessage, r.EndedAt = res.Status, res.FailureCode, res.FailureMessage, s.stamp()
		if _, err := s.exec(ctx, tx, `UPDATE runs SET status = ?, failure_code = ?, failure_message = ?, ended_at = ? WHERE id = ?`,
			string(r.Status), string(r.FailureCode), r.FailureMessage, s.bindTime(r.EndedAt), runID); err != nil {
			return err
		}
		out = r
		// As FinishRun: a cancellation counts in no streak, but the rule
		// is store.CountsInStreak's, not this path's.
		return s.updateStreak(ctx, tx, r, res)
	})
	return out, s.dbErr("cancel queued run", err)
}

// ListOccurrences implements store.Dispatch.
func (s *Store) ListOccurrences(ctx context.Context, f store.OccurrenceFilter) ([]store.Occurrence, error) {
	var (
		where []string
		args  []any
	)
	if f.ConnectionID != "" {
		where, args = append(where, `connection_id = ?`), append(args, f.ConnectionID)
	}
	if f.State != "" {
		where, args = append(where, `state = ?`), append(args, string(f.State))
	}
	if f.ClaimedBy != "" {
		where, args = append(where, `claimed_by = ?`), append(args, f.ClaimedBy)
	}
	query := `SELECT ` + occurrenceCols + ` FROM occurrences`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.query(ctx, s.r, query+` ORDER BY run_at, connection_id`, args...)
	if err != nil {
		return nil, s.dbErr("list occurrences", err)
	}
	out, err := collectOccurrences(rows)
	return out, s.dbErr("list occurrences", err)
}
