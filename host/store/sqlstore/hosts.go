package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

const hostCols = `id, addr, version, started_at, last_seen, runs_active, status, ended_at`

func scanHost(row interface{ Scan(...any) error }) (store.Host, error) {
	var h store.Host
	err := row.Scan(&h.ID, &h.Addr, &h.Version, timeCol{&h.StartedAt}, timeCol{&h.LastSeen}, &h.RunsActive,
		&h.Status, timeCol{&h.EndedAt})
	return h, err
}

// hostRetention is how long the row of a stopped or crashed host stays
// listed.
const hostRetention = 7 * 24 * time.Hour

// RegisterHost implements store.Hosts.
func (s *Store) RegisterHost(ctx context.Context, n store.NewHost) (store.Host, error) {
	if err := n.Validate(); err != nil {
		return store.Host{}, err
	}
	now := s.stamp()
	h := store.Host{ID: n.ID, Addr: n.Addr, Version: n.Version, StartedAt: now, LastSeen: now, Status: store.HostLive}
	_, err := s.exec(ctx, s.w, `INSERT INTO hosts (id, addr, version, started_at, last_seen, runs_active, status)
		VALUES (?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, version = excluded.version, last_seen = excluded.last_seen,
			status = excluded.status, ended_at = NULL`,
		h.ID, h.Addr, h.Version, s.bindTime(now), s.bindTime(now), string(h.Status))
	if err != nil {
		return store.Host{}, s.dbErr("register host", err)
	}
	return s.getHost(ctx, h.ID)
}

func (s *Store) getHost(ctx context.Context, id string) (store.Host, error) {
	h, err := scanHost(s.queryRow(ctx, s.w, `SELECT `+hostCols+` FROM hosts WHERE id = ?`, id))
	return h, s.dbErr("get host", err)
}

// HeartbeatHost implements store.Hosts.
func (s *Store) HeartbeatHost(ctx context.Context, id string, runsActive int) (store.Host, error) {
	res, err := s.exec(ctx, s.w, `UPDATE hosts SET last_seen = ?, runs_active = ? WHERE id = ? AND status = ?`,
		s.bindTime(s.stamp()), runsActive, id, string(store.HostLive))
	if err != nil {
		return store.Host{}, s.dbErr("heartbeat host", err)
	}
	if n, err := affected(res); err != nil {
		return store.Host{}, err
	} else if n == 0 {
		return store.Host{}, fmt.Errorf("%w: %q", store.ErrHostNotLive, id)
	}
	return s.getHost(ctx, id)
}

// StopHost implements store.Hosts.
func (s *Store) StopHost(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *txn) error {
		now := s.stamp()
		if _, err := s.exec(ctx, tx, `UPDATE hosts SET status = ?, ended_at = ?, runs_active = 0 WHERE id = ? AND status = ?`,
			string(store.HostStopped), s.bindTime(now), id, string(store.HostLive)); err != nil {
			return err
		}
		if _, err := s.release(ctx, tx, id, "", ""); err != nil {
			return err
		}
		// What is still claimed ran here and ended; its worker did not get
		// to complete it.
		_, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE claimed_by = ?`, id)
		return err
	})
	return s.dbErr("stop host", err)
}

// ListHosts implements store.Hosts.
func (s *Store) ListHosts(ctx context.Context) ([]store.Host, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+hostCols+` FROM hosts ORDER BY started_at DESC, id`)
	if err != nil {
		return nil, s.dbErr("list hosts", err)
	}
	defer rows.Close()
	var out []store.Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, s.dbErr("list hosts", err)
		}
		out = append(out, h)
	}
	return out, s.dbErr("list hosts", rows.Err())
}

// ReapHosts implements store.Hosts.
func (s *Store) ReapHosts(ctx context.Context, self string, deadBefore time.Time) ([]store.HostReap, error) {
	rows, err := s.query(ctx, s.r, `SELECT id FROM hosts WHERE status = ? AND id <> ? AND last_seen < ? ORDER BY id`,
		string(store.HostLive), self, s.bindTime(deadBefore))
	if err != nil {
		return nil, s.dbErr("reap hosts", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, s.dbErr("reap hosts", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("reap hosts", err)
	}
	var out []store.HostReap
	for _, id := range ids {
		r, ok, err := s.reapHost(ctx, id, deadBefore)
		if err != nil {
			return out, s.dbErr("reap host", err)
		}
		if ok {
			out = append(out, r)
		}
	}
	if _, err := s.exec(ctx, s.w, `DELETE FROM hosts WHERE status <> ? AND ended_at < ?`,
		string(store.HostLive), s.bindTime(s.stamp().Add(-hostRetention))); err != nil {
		return out, s.dbErr("prune hosts", err)
	}
	return out, nil
}

// reapHost takes back everything of one dead host in one transaction. It
// reports false when another caller reaped it first or it heartbeated
// since it was listed.
func (s *Store) reapHost(ctx context.Context, id string, deadBefore time.Time) (store.HostReap, bool, error) {
	var out store.HostReap
	reaped := false
	err := s.tx(ctx, func(tx *txn) error {
		now := s.stamp()
		res, err := s.exec(ctx, tx, `UPDATE hosts SET status = ?, ended_at = ?, runs_active = 0 WHERE id = ? AND status = ? AND last_seen < ?`,
			string(store.HostCrashed), s.bindTime(now), id, string(store.HostLive), s.bindTime(deadBefore))
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil || n == 0 {
			return err
		}
		reaped = true
		// Claims that started nothing go back to the queue; the rest are
		// the runs failed below.
		released, err := s.release(ctx, tx, id, "", "")
		if err != nil {
			return err
		}
		out.Released = int(released)
		if _, err := s.exec(ctx, tx, `DELETE FROM occurrences WHERE claimed_by = ?`, id); err != nil {
			return err
		}
		rows, err := s.query(ctx, tx, `UPDATE runs SET status = ?, failure_code = ?, failure_message = ?, ended_at = ?
			WHERE host_id = ? AND (status = ? OR (status = ? AND trigger <> ?))
			RETURNING `+runCols,
			string(store.RunFailed), string(failure.HostCrashed), "the host running it stopped before the run ended",
			s.bindTime(now), id, string(store.RunRunning), string(store.RunQueued), string(store.TriggerManual))
		if err != nil {
			return err
		}
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out.Runs = append(out.Runs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Each failed run counts in its connection's streak as FinishRun
		// would count it (the same transaction, the same rule); the reap
		// holds nothing and backs nothing off.
		slices.SortFunc(out.Runs, func(a, b store.Run) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		for _, r := range out.Runs {
			if err := s.updateStreak(ctx, tx, r, store.RunResult{Status: r.Status, FailureCode: r.FailureCode,
				FailureMessage: r.FailureMessage}); err != nil {
				return err
			}
		}
		lrows, err := s.query(ctx, tx, `DELETE FROM leases WHERE holder = ? RETURNING `+leaseCols, id)
		if err != nil {
			return err
		}
		if out.Leases, err = s.collectLeases(lrows, "reap leases"); err != nil {
			return err
		}
		h, err := scanHost(s.queryRow(ctx, tx, `SELECT `+hostCols+` FROM hosts WHERE id = ?`, id))
		out.Host = h
		return err
	})
	if err != nil {
		return store.HostReap{}, false, err
	}
	if !reaped {
		return store.HostReap{}, false, nil
	}
	return out, true, nil
}
