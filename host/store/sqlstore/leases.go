package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/store"
)

const leaseCols = `connection_id, run_id, holder, acquired_at, expires_at`

func scanLease(row interface{ Scan(...any) error }) (store.Lease, error) {
	var l store.Lease
	err := row.Scan(&l.ConnectionID, &l.RunID, &l.Holder, timeCol{&l.AcquiredAt}, timeCol{&l.ExpiresAt})
	return l, err
}

// getLease returns the connection's lease and whether there is one.
func (s *Store) getLease(ctx context.Context, db querier, connID string, lock bool) (store.Lease, bool, error) {
	query := `SELECT ` + leaseCols + ` FROM leases WHERE connection_id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	l, err := scanLease(s.queryRow(ctx, db, query, connID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Lease{}, false, nil
	}
	if err != nil {
		return store.Lease{}, false, err
	}
	return l, true, nil
}

func leaseNotHeld(connID, runID string) error {
	return fmt.Errorf("%w: connection %q, run %q", store.ErrLeaseNotHeld, connID, runID)
}

// AcquireLease implements store.Leases.
func (s *Store) AcquireLease(ctx context.Context, req store.LeaseRequest) (store.LeaseGrant, error) {
	if err := req.Validate(); err != nil {
		return store.LeaseGrant{}, err
	}
	var out store.LeaseGrant
	err := s.tx(ctx, func(tx *txn) error {
		if err := s.requireConnection(ctx, tx, req.ConnectionID, false); err != nil {
			return err
		}
		r, err := s.getRun(ctx, tx, req.RunID, false)
		if err != nil {
			return err
		}
		if r.ConnectionID != req.ConnectionID {
			return fmt.Errorf("%w: %q is not a run of connection %q", store.ErrRunNotFound, req.RunID, req.ConnectionID)
		}
		if r.Status.Terminal() {
			return &store.RunStateError{RunID: r.ID, Op: "lease", Status: r.Status}
		}
		now := s.stamp()
		want := store.Lease{
			ConnectionID: req.ConnectionID, RunID: req.RunID, Holder: req.Holder,
			AcquiredAt: now, ExpiresAt: s.trunc(now.Add(req.TTL)),
		}
		cur, held, err := s.getLease(ctx, tx, req.ConnectionID, true)
		if err != nil {
			return err
		}
		switch {
		case !held:
			// DO NOTHING rather than a unique violation, which would abort
			// the whole transaction on PostgreSQL.
			res, err := s.exec(ctx, tx, `INSERT INTO leases (`+leaseCols+`) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (connection_id) DO NOTHING`,
				want.ConnectionID, want.RunID, want.Holder, s.bindTime(want.AcquiredAt), s.bindTime(want.ExpiresAt))
			if err != nil {
				return err
			}
			if n, err := affected(res); err != nil {
				return err
			} else if n == 0 {
				// Another transaction inserted first (databases with
				// concurrent writers): report its lease.
				return s.leaseHeld(ctx, tx, req.ConnectionID)
			}
			out.Lease = want
			return nil
		case cur.RunID == req.RunID:
			// Idempotent for the holder: extend, keep the acquisition time.
			want.AcquiredAt = cur.AcquiredAt
			_, err := s.exec(ctx, tx, `UPDATE leases SET holder = ?, expires_at = ? WHERE connection_id = ? AND run_id = ?`,
				want.Holder, s.bindTime(want.ExpiresAt), req.ConnectionID, req.RunID)
			out.Lease = want
			return err
		case !cur.Expired(now):
			return store.RunActive(cur)
		}
		// Take over the expired lease; compare-and-swap on its run so a
		// concurrent taker cannot be overwritten unnoticed.
		res, err := s.exec(ctx, tx, `UPDATE leases SET run_id = ?, holder = ?, acquired_at = ?, expires_at = ?
			WHERE connection_id = ? AND run_id = ?`,
			want.RunID, want.Holder, s.bindTime(want.AcquiredAt), s.bindTime(want.ExpiresAt), req.ConnectionID, cur.RunID)
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return s.leaseHeld(ctx, tx, req.ConnectionID)
		}
		out = store.LeaseGrant{Lease: want, Replaced: &cur}
		return nil
	})
	if err != nil {
		return store.LeaseGrant{}, s.dbErr("acquire lease", err)
	}
	return out, nil
}

// leaseHeld returns RunActive for the connection's current lease.
func (s *Store) leaseHeld(ctx context.Context, db querier, connID string) error {
	l, ok, err := s.getLease(ctx, db, connID, false)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("lease changed concurrently")
	}
	return store.RunActive(l)
}

// RenewLease implements store.Leases.
func (s *Store) RenewLease(ctx context.Context, connectionID, runID string, ttl time.Duration) (store.Lease, error) {
	if ttl <= 0 {
		return store.Lease{}, &store.InvalidError{Field: "ttl", Reason: "must be positive"}
	}
	var out store.Lease
	err := s.tx(ctx, func(tx *txn) error {
		l, ok, err := s.getLease(ctx, tx, connectionID, true)
		if err != nil {
			return err
		}
		if !ok || l.RunID != runID {
			return leaseNotHeld(connectionID, runID)
		}
		l.ExpiresAt = s.trunc(s.stamp().Add(ttl))
		_, err = s.exec(ctx, tx, `UPDATE leases SET expires_at = ? WHERE connection_id = ? AND run_id = ?`,
			s.bindTime(l.ExpiresAt), connectionID, runID)
		out = l
		return err
	})
	return out, s.dbErr("renew lease", err)
}

// ReleaseLease implements store.Leases.
func (s *Store) ReleaseLease(ctx context.Context, connectionID, runID string) error {
	res, err := s.exec(ctx, s.w, `DELETE FROM leases WHERE connection_id = ? AND run_id = ?`, connectionID, runID)
	if err != nil {
		return s.dbErr("release lease", err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return leaseNotHeld(connectionID, runID)
	}
	return nil
}

// ListLeases implements store.Leases.
func (s *Store) ListLeases(ctx context.Context) ([]store.Lease, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+leaseCols+` FROM leases ORDER BY connection_id`)
	if err != nil {
		return nil, s.dbErr("list leases", err)
	}
	return s.collectLeases(rows, "list leases")
}

// ReclaimLeases implements store.Leases.
func (s *Store) ReclaimLeases(ctx context.Context, f store.ReclaimFilter) ([]store.Lease, error) {
	var (
		or   []string
		args []any
	)
	if f.Holder != "" {
		or, args = append(or, `holder = ?`), append(args, f.Holder)
	}
	if !f.ExpiredBy.IsZero() {
		or, args = append(or, `expires_at <= ?`), append(args, s.bindTime(f.ExpiredBy))
	}
	if len(or) == 0 {
		return nil, &store.InvalidError{Field: "filter", Reason: "set Holder or ExpiredBy"}
	}
	var out []store.Lease
	err := s.tx(ctx, func(tx *txn) error {
		rows, err := s.query(ctx, tx, `DELETE FROM leases WHERE `+strings.Join(or, ` OR `)+` RETURNING `+leaseCols, args...)
		if err != nil {
			return err
		}
		out, err = s.collectLeases(rows, "reclaim leases")
		return err
	})
	if err != nil {
		return nil, s.dbErr("reclaim leases", err)
	}
	slices.SortFunc(out, func(a, b store.Lease) int { return strings.Compare(a.ConnectionID, b.ConnectionID) })
	return out, nil
}

func (s *Store) collectLeases(rows *sql.Rows, op string) ([]store.Lease, error) {
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, s.dbErr(op, err)
		}
		out = append(out, l)
	}
	return out, s.dbErr(op, rows.Err())
}
