package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/connhost/connhost/host/store"
)

const runCols = `id, connection_id, trigger, attempt, retry_of, status, failure_code, failure_message,
	created_at, started_at, ended_at, records, host_id, scheduled_for, provenance`

func scanRun(row interface{ Scan(...any) error }) (store.Run, error) {
	var r store.Run
	err := row.Scan(&r.ID, &r.ConnectionID, &r.Trigger, &r.Attempt, &r.RetryOf, &r.Status, &r.FailureCode,
		&r.FailureMessage, timeCol{&r.CreatedAt}, timeCol{&r.StartedAt}, timeCol{&r.EndedAt}, &r.Records, &r.HostID,
		timeCol{&r.ScheduledFor}, provenanceCol{&r.Provenance})
	return r, err
}

func (s *Store) getRun(ctx context.Context, db querier, id string, lock bool) (store.Run, error) {
	query := `SELECT ` + runCols + ` FROM runs WHERE id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	r, err := scanRun(s.queryRow(ctx, db, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, &store.RunNotFoundError{ID: id}
	}
	return r, err
}

// CreateRun implements store.Runs.
func (s *Store) CreateRun(ctx context.Context, n store.NewRun) (store.Run, error) {
	if err := n.Validate(); err != nil {
		return store.Run{}, err
	}
	if n.Attempt == 0 {
		n.Attempt = 1
	}
	var out store.Run
	err := s.tx(ctx, func(tx *txn) error {
		if err := s.requireConnection(ctx, tx, n.ConnectionID, false); err != nil {
			return err
		}
		now := s.stamp()
		id, err := s.newID("run_", now)
		if err != nil {
			return err
		}
		out = store.Run{
			ID: id, ConnectionID: n.ConnectionID, Trigger: n.Trigger, Attempt: n.Attempt, RetryOf: n.RetryOf,
			Status: store.RunQueued, CreatedAt: now, HostID: n.HostID, ScheduledFor: s.truncZero(n.ScheduledFor),
		}
		if n.OccurrenceID != "" {
			// Bind the run to the claimed occurrence first: a host that
			// lost its claim (reaped, or the connection changed) starts
			// nothing.
			// A scheduled or retry occurrence recorded under an older
			// schedule generation starts nothing: the schedule moved
			// after it was claimed.
			res, err := s.exec(ctx, tx, `UPDATE occurrences SET run_id = ? WHERE connection_id = ? AND id = ? AND state = ? AND claimed_by = ? AND run_id = ''
				AND (trigger = ? OR schedule_gen = (SELECT schedule_gen FROM connections WHERE id = ?))`,
				out.ID, n.ConnectionID, n.OccurrenceID, string(store.OccurrenceClaimed), n.HostID, string(store.TriggerManual), n.ConnectionID)
			if err != nil {
				return err
			}
			if k, err := affected(res); err != nil {
				return err
			} else if k == 0 {
				return fmt.Errorf("%w: occurrence %q of connection %q", store.ErrOccurrenceLost, n.OccurrenceID, n.ConnectionID)
			}
		}
		return s.insertRun(ctx, tx, out)
	})
	return out, s.dbErr("create run", err)
}

// insertRun writes a new run row.
func (s *Store) insertRun(ctx context.Context, tx *txn, r store.Run) error {
	_, err := s.exec(ctx, tx, `INSERT INTO runs (id, connection_id, trigger, attempt, retry_of, status, created_at, host_id, scheduled_for)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.ConnectionID, string(r.Trigger), r.Attempt, r.RetryOf, string(r.Status),
		s.bindTime(r.CreatedAt), r.HostID, s.bindNullTime(r.ScheduledFor))
	return err
}

// GetRun implements store.Runs.
func (s *Store) GetRun(ctx context.Context, id string) (store.Run, error) {
	r, err := s.getRun(ctx, s.r, id, false)
	return r, s.dbErr("get run", err)
}

// ListRuns implements store.Runs.
func (s *Store) ListRuns(ctx context.Context, f store.RunFilter) (store.RunPage, error) {
	var (
		where []string
		args  []any
	)
	if f.ConnectionID != "" {
		where, args = append(where, `connection_id = ?`), append(args, f.ConnectionID)
	}
	if f.Status != "" {
		where, args = append(where, `status = ?`), append(args, string(f.Status))
	}
	if f.Trigger != "" {
		where, args = append(where, `trigger = ?`), append(args, string(f.Trigger))
	}
	if f.HostID != "" {
		where, args = append(where, `host_id = ?`), append(args, f.HostID)
	}
	if f.Cursor != "" {
		at, id, err := timeCursor(f.Cursor, "runs")
		if err != nil {
			return store.RunPage{}, err
		}
		// A row value, so both dialects seek the (created_at, id) index
		// instead of scanning every row that shares created_at.
		where = append(where, `(created_at, id) < (?, ?)`)
		args = append(args, s.bindTime(at), id)
	}
	limit := store.PageLimit(f.Limit)
	query := `SELECT ` + runCols + ` FROM runs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.query(ctx, s.r, query+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return store.RunPage{}, s.dbErr("list runs", err)
	}
	defer rows.Close()
	var page store.RunPage
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return store.RunPage{}, s.dbErr("list runs", err)
		}
		page.Runs = append(page.Runs, r)
	}
	if err := rows.Err(); err != nil {
		return store.RunPage{}, s.dbErr("list runs", err)
	}
	if len(page.Runs) > limit {
		page.Runs = page.Runs[:limit]
		last := page.Runs[limit-1]
		page.Next = encodeCursor("runs", FormatTime(last.CreatedAt), last.ID)
	}
	return page, nil
}

// MarkRunRunning implements store.Runs.
func (s *Store) MarkRunRunning(ctx context.Context, id string, prov *store.Provenance) (store.Run, error) {
	provCol, err := encodeProvenance(prov)
	if err != nil {
		return store.Run{}, err
	}
	var out store.Run
	err = s.tx(ctx, func(tx *txn) error {
		r, err := s.getRun(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if r.Status != store.RunQueued {
			return &store.RunStateError{RunID: id, Op: "mark running", Status: r.Status}
		}
		r.Status, r.StartedAt, r.Provenance = store.RunRunning, s.stamp(), prov
		_, err = s.exec(ctx, tx, `UPDATE runs SET status = ?, started_at = ?, provenance = ? WHERE id = ?`,
			string(r.Status), s.bindTime(r.StartedAt), provCol, id)
		out = r
		return err
	})
	return out, s.dbErr("mark run running", err)
}

// FinishRun implements store.Runs.
func (s *Store) FinishRun(ctx context.Context, id string, res store.RunResult) (store.Run, error) {
	if err := res.Validate(); err != nil {
		return store.Run{}, err
	}
	provCol, err := encodeProvenance(res.Provenance)
	if err != nil {
		return store.Run{}, err
	}
	var out store.Run
	err = s.tx(ctx, func(tx *txn) error {
		r, err := s.getRun(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !slices.Contains(res.Status.FinishableFrom(), r.Status) {
			return &store.RunStateError{RunID: id, Op: "finish as " + string(res.Status), Status: r.Status}
		}
		r.Status, r.FailureCode, r.FailureMessage, r.EndedAt = res.Status, res.FailureCode, res.FailureMessage, s.stamp()
		if res.Provenance != nil {
			r.Provenance = res.Provenance
			if _, err := s.exec(ctx, tx, `UPDATE runs SET provenance = ? WHERE id = ?`, provCol, id); err != nil {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, `UPDATE runs SET status = ?, failure_code = ?, failure_message = ?, ended_at = ? WHERE id = ?`,
			string(r.Status), string(r.FailureCode), r.FailureMessage, s.bindTime(r.EndedAt), id); err != nil {
			return err
		}
		if err := s.updateStreak(ctx, tx, r, res); err != nil {
			return err
		}
		// A finished run holds nothing: its lease goes in the same
		// transaction, so whoever reads the run as ended finds the
		// connection free (delete, reset-state, a next trigger).
		if _, err := s.exec(ctx, tx, `DELETE FROM leases WHERE connection_id = ? AND run_id = ?`, r.ConnectionID, id); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, s.dbErr("finish run", err)
}
