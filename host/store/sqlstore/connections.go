package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// connectionCols are the columns CreateConnection writes; a read adds
// the dispatch columns (readConnectionCols).
const (
	connectionCols     = `id, connector_key, label, config, schedule_spec, schedule_jitter, state, created_at, updated_at`
	readConnectionCols = connectionCols + `, schedule_gen, last_due_at, coalesced_ticks, last_coalesced_at,
		last_run_status, last_run_at, fail_code, fail_count, fail_since, hold_code, hold_message, hold_at, hold_run_id, backoff_until`
)

func scanConnection(row interface{ Scan(...any) error }) (store.Connection, error) {
	var (
		c      store.Connection
		jitter int64
	)
	err := row.Scan(&c.ID, &c.ConnectorKey, &c.Label, (*[]byte)(&c.Config), &c.Schedule.Spec, &jitter,
		&c.State, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt},
		&c.ScheduleGen, timeCol{&c.LastDueAt}, &c.CoalescedTicks, timeCol{&c.LastCoalescedAt},
		&c.Streak.LastRunStatus, timeCol{&c.Streak.LastRunAt}, &c.Streak.FailCode, &c.Streak.FailCount, timeCol{&c.Streak.FailSince},
		&c.Hold.Code, &c.Hold.Message, timeCol{&c.Hold.At}, &c.Hold.RunID, timeCol{&c.BackoffUntil})
	c.Schedule.Jitter = time.Duration(jitter)
	return c, err
}

func (s *Store) getConnection(ctx context.Context, db querier, id string, lock bool) (store.Connection, error) {
	query := `SELECT ` + readConnectionCols + ` FROM connections WHERE id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	c, err := scanConnection(s.queryRow(ctx, db, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Connection{}, store.ConnectionNotFound(id)
	}
	return c, err
}

// CreateConnection implements store.Connections.
func (s *Store) CreateConnection(ctx context.Context, n store.NewConnection) (store.Connection, error) {
	if err := n.Validate(); err != nil {
		return store.Connection{}, err
	}
	var out store.Connection
	err := s.tx(ctx, func(tx *txn) error {
		var one int
		err := s.queryRow(ctx, tx, `SELECT 1 FROM connectors WHERE key = ?`, n.ConnectorKey).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ConnectorNotFound(n.ConnectorKey)
		}
		if err != nil {
			return err
		}
		now := s.stamp()
		id, err := s.newID("conn_", now)
		if err != nil {
			return err
		}
		out = store.Connection{
			ID: id, ConnectorKey: n.ConnectorKey, Label: n.Label,
			Config:   []byte(bindJSON(n.Config, "{}")),
			Schedule: n.Schedule, State: store.ConnectionActive, CreatedAt: now, UpdatedAt: now,
		}
		_, err = s.exec(ctx, tx, `INSERT INTO connections (`+connectionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			out.ID, out.ConnectorKey, out.Label, string(out.Config), out.Schedule.Spec, int64(out.Schedule.Jitter),
			string(out.State), s.bindTime(now), s.bindTime(now))
		return err
	})
	return out, s.dbErr("create connection", err)
}

// GetConnection implements store.Connections.
func (s *Store) GetConnection(ctx context.Context, id string) (store.Connection, error) {
	c, err := s.getConnection(ctx, s.r, id, false)
	return c, s.dbErr("get connection", err)
}

// ListConnections implements store.Connections.
func (s *Store) ListConnections(ctx context.Context, f store.ConnectionFilter) ([]store.Connection, error) {
	conns, err := s.listConnections(ctx, f, "", 0)
	return conns, s.dbErr("list connections", err)
}

// ListConnectionPage implements store.Connections.
func (s *Store) ListConnectionPage(ctx context.Context, f store.ConnectionPageFilter) (store.ConnectionPage, error) {
	limit := store.PageLimit(f.Limit)
	conns, err := s.listConnections(ctx, f.ConnectionFilter, f.Cursor, limit+1)
	if err != nil {
		return store.ConnectionPage{}, s.dbErr("list connections", err)
	}
	page := store.ConnectionPage{Connections: conns}
	if len(conns) > limit {
		page.Connections = conns[:limit]
		last := conns[limit-1]
		page.Next = encodeCursor("connections", FormatTime(last.CreatedAt), last.ID)
	}
	return page, nil
}

// listConnections reads matching connections in (created_at, id) order,
// after cursor when one is given, at most limit of them when limit > 0.
func (s *Store) listConnections(ctx context.Context, f store.ConnectionFilter, cursor string, limit int) ([]store.Connection, error) {
	var (
		where []string
		args  []any
	)
	if f.ConnectorKey != "" {
		where, args = append(where, `connector_key = ?`), append(args, f.ConnectorKey)
	}
	if f.State != "" {
		where, args = append(where, `state = ?`), append(args, string(f.State))
	}
	if cursor != "" {
		at, id, err := timeCursor(cursor, "connections")
		if err != nil {
			return nil, err
		}
		where = append(where, `(created_at, id) > (?, ?)`) // a row value: an index seek
		args = append(args, s.bindTime(at), id)
	}
	query := `SELECT ` + readConnectionCols + ` FROM connections`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY created_at, id`
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateConnection implements store.Connections.
func (s *Store) UpdateConnection(ctx context.Context, id string, p store.ConnectionPatch) (store.Connection, error) {
	if err := p.Validate(); err != nil {
		return store.Connection{}, err
	}
	var out store.Connection
	err := s.tx(ctx, func(tx *txn) error {
		c, err := s.getConnection(ctx, tx, id, true)
		if err != nil {
			return err
		}
		out = c
		if p.Label == nil && p.Config == nil && p.Schedule == nil {
			return nil
		}
		if p.Label != nil {
			out.Label = *p.Label
		}
		if p.Config != nil {
			out.Config = p.Config
		}
		if p.Schedule != nil {
			out.Schedule = *p.Schedule
		}
		out.UpdatedAt = s.stamp()
		_, err = s.exec(ctx, tx, `UPDATE connections SET label = ?, config = ?, schedule_spec = ?, schedule_jitter = ?, updated_at = ? WHERE id = ?`,
			out.Label, string(out.Config), out.Schedule.Spec, int64(out.Schedule.Jitter), s.bindTime(out.UpdatedAt), id)
		if err != nil {
			return err
		}
		// A config given addresses an invalid_config hold — even one equal
		// to the stored config as JSON: {"records": 5.0} equals 5 there,
		// not to a connector decoding an int64, and the operator who
		// fixed it sent it. A config or a new schedule is an operator's
		// answer to a backoff.
		if p.Config != nil {
			if _, err := s.clearHold(ctx, tx, &out, failure.InvalidConfig); err != nil {
				return err
			}
		} else if out.Schedule != c.Schedule {
			if _, err := s.clearBackoff(ctx, tx, &out); err != nil {
				return err
			}
		}
		if out.Schedule != c.Schedule {
			return s.moveSchedule(ctx, tx, &out, false)
		}
		return nil
	})
	return out, s.dbErr("update connection", err)
}

// SetConnectionState implements store.Connections.
func (s *Store) SetConnectionState(ctx context.Context, id string, state store.ConnectionState) (store.Connection, error) {
	if !state.Valid() {
		return store.Connection{}, &store.InvalidError{Field: "state", Reason: "unknown connection state " + string(state)}
	}
	var out store.Connection
	err := s.tx(ctx, func(tx *txn) error {
		c, err := s.getConnection(ctx, tx, id, true)
		if err != nil {
			return err
		}
		out = c
		if !slices.Contains(state.ReachableFrom(), c.State) {
			return store.Conflict(&store.TransitionError{ConnectionID: id, From: c.State, To: state})
		}
		if c.State == state { // a no-op: pause of a paused connection, …
			return nil
		}
		out.State, out.UpdatedAt = state, s.stamp()
		_, err = s.exec(ctx, tx, `UPDATE connections SET state = ?, updated_at = ? WHERE id = ?`,
			string(state), s.bindTime(out.UpdatedAt), id)
		if err != nil {
			return err
		}
		if state == store.ConnectionActive {
			// Resuming is an operator's answer to a backoff.
			if _, err := s.clearBackoff(ctx, tx, &out); err != nil {
				return err
			}
		}
		return s.moveSchedule(ctx, tx, &out, state == store.ConnectionRevoked)
	})
	return out, s.dbErr("set connection state", err)
}

// DeleteConnection implements store.Connections.
func (s *Store) DeleteConnection(ctx context.Context, id string) (store.ConnectionDeletion, error) {
	var out store.ConnectionDeletion
	err := s.tx(ctx, func(tx *txn) error {
		c, err := s.getConnection(ctx, tx, id, true)
		if err != nil {
			return err
		}
		out.Connection = c
		l, ok, err := s.getLease(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if ok && !l.Expired(s.stamp()) {
			return store.RunActive(l)
		}
		// Children first: the foreign keys have no ON DELETE CASCADE, so a
		// table forgotten here makes the delete fail instead of leaving
		// orphans.
		del := func(table string) (int64, error) {
			res, err := s.exec(ctx, tx, `DELETE FROM `+table+` WHERE connection_id = ?`, id)
			if err != nil {
				return 0, err
			}
			return affected(res)
		}
		if _, err := del("leases"); err != nil {
			return err
		}
		// Records name their stream without a foreign key (it would cost
		// a check per upserted row): they go first, by their streams.
		res, err := s.exec(ctx, tx, `DELETE FROM records WHERE stream_id IN (SELECT id FROM streams WHERE connection_id = ?)`, id)
		if err != nil {
			return err
		}
		if out.Records, err = affected(res); err != nil {
			return err
		}
		if _, err := del("streams"); err != nil {
			return err
		}
		if _, err := del("record_batches"); err != nil {
			return err
		}
		n, err := del("checkpoints")
		if err != nil {
			return err
		}
		out.Checkpoint = n > 0
		if n, err = del("credentials"); err != nil {
			return err
		}
		out.Credential = n > 0
		if _, err := del("enrollment"); err != nil {
			return err
		}
		if err := s.dropQueuedRuns(ctx, tx, id, store.RunResult{Status: store.RunCancelled,
			FailureCode: failure.ConnectionNotFound, FailureMessage: "the connection was deleted before the run started"}); err != nil {
			return err
		}
		if _, err := del("occurrences"); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `DELETE FROM connections WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return store.ConnectionDeletion{}, s.dbErr("delete connection", err)
	}
	return out, nil
}

// moveSchedule is the part of a schedule change (new spec or jitter,
// pause, resume, revoke) that keeps the dispatch queue in step, in the
// change's transaction: the generation bumps, so a tick computed from the
// old schedule is stale wherever it fell due; the recorded watermark
// resets; and the pending scheduled or retry occurrence goes. A pending
// manual run stays (it does not come from the schedule) unless the
// connection is revoked, when it is refused.
func (s *Store) moveSchedule(ctx context.Context, tx *txn, c *store.Connection, revoked bool) error {
	c.ScheduleGen++
	c.LastDueAt = time.Time{}
	if _, err := s.exec(ctx, tx, `UPDATE connections SET schedule_gen = ?, last_due_at = NULL WHERE id = ?`,
		c.ScheduleGen, c.ID); err != nil {
		return err
	}
	if revoked {
		if err := s.dropQueuedRuns(ctx, tx, c.ID, store.RunResult{Status: store.RunRefused,
			FailureCode: failure.ConnectionRevoked, FailureMessage: "the connection was revoked before the run started"}); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE connection_id = ? AND state = ?`, c.ID, string(store.OccurrencePending))
		return err
	}
	_, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE connection_id = ? AND state = ? AND trigger <> ?`,
		c.ID, string(store.OccurrencePending), string(store.TriggerManual))
	return err
}

// dropQueuedRuns finishes the queued run of the connection's pending
// manual occurrence with res; the caller removes the occurrence.
func (s *Store) dropQueuedRuns(ctx context.Context, tx *txn, connID string, res store.RunResult) error {
	o, ok, err := s.getOccurrence(ctx, tx, connID, true)
	if err != nil || !ok || o.State != store.OccurrencePending || o.Trigger != store.TriggerManual || o.RunID == "" {
		return err
	}
	_, err = s.exec(ctx, tx, `UPDATE runs SET status = ?, failure_code = ?, failure_message = ?, ended_at = ? WHERE id = ? AND status = ?`,
		string(res.Status), string(res.FailureCode), res.FailureMessage, s.bindTime(s.stamp()), o.RunID, string(store.RunQueued))
	return err
}
