package sqlstore

import (
	"context"
	"slices"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// updateStreak keeps the connection's streak, hold and backoff in step
// with a run that just ended, in the transaction that ended it: every
// path that ends a run calls it (FinishRun, CancelQueuedRun, the reap of
// a dead host), so they all count alike. A connection deleted since
// leaves nothing to update.
func (s *Store) updateStreak(ctx context.Context, tx *txn, r store.Run, res store.RunResult) error {
	if !store.CountsInStreak(r.Status, r.FailureCode) {
		return nil
	}
	c, err := s.getConnection(ctx, tx, r.ConnectionID, true)
	if err != nil {
		if failure.CodeOf(err) == failure.ConnectionNotFound {
			return nil
		}
		return err
	}
	at := r.EndedAt
	if r.Status == store.RunSucceeded {
		// A success ends every failure streak, hold and backoff.
		_, err := s.exec(ctx, tx, `UPDATE connections SET last_run_status = ?, last_run_at = ?, fail_code = '', fail_count = 0,
			fail_since = NULL, hold_code = '', hold_message = '', hold_at = NULL, hold_run_id = '', backoff_until = NULL WHERE id = ?`,
			string(r.Status), s.bindTime(at), c.ID)
		if err != nil || !c.Hold.Held() {
			return err
		}
		// A held connection came back (a manual run succeeded): its
		// schedule moves, so the scheduler re-enrolls it afresh.
		return s.moveSchedule(ctx, tx, &c, false)
	}
	st := c.Streak.After(r.Status, r.FailureCode, at)
	backoff := c.BackoffUntil
	if !res.BackoffUntil.IsZero() {
		backoff = s.trunc(res.BackoffUntil)
	}
	if _, err := s.exec(ctx, tx, `UPDATE connections SET last_run_status = ?, last_run_at = ?, fail_code = ?, fail_count = ?,
		fail_since = ?, backoff_until = ? WHERE id = ?`,
		string(r.Status), s.bindTime(at), string(st.FailCode), st.FailCount, s.bindTime(st.FailSince),
		s.bindNullTime(backoff), c.ID); err != nil {
		return err
	}
	if !res.Hold || c.Hold.Held() {
		return nil
	}
	if _, err := s.exec(ctx, tx, `UPDATE connections SET hold_code = ?, hold_message = ?, hold_at = ?, hold_run_id = ? WHERE id = ?`,
		string(r.FailureCode), r.FailureMessage, s.bindTime(at), r.ID, c.ID); err != nil {
		return err
	}
	// Nothing due under the schedule as it was starts after the hold.
	return s.moveSchedule(ctx, tx, &c, false)
}

// clearHold releases c's hold when its code is one of codes (any code
// when codes is empty) and clears its backoff, in tx; it reports whether
// anything changed.
func (s *Store) clearHold(ctx context.Context, tx *txn, c *store.Connection, codes ...failure.Code) (bool, error) {
	release := c.Hold.Held() && (len(codes) == 0 || slices.Contains(codes, c.Hold.Code))
	if !release && c.BackoffUntil.IsZero() {
		return false, nil
	}
	query := `UPDATE connections SET backoff_until = NULL WHERE id = ?`
	if release {
		query = `UPDATE connections SET backoff_until = NULL, hold_code = '', hold_message = '', hold_at = NULL, hold_run_id = '' WHERE id = ?`
		c.Hold = store.Hold{}
	}
	c.BackoffUntil = time.Time{}
	if _, err := s.exec(ctx, tx, query, c.ID); err != nil {
		return false, err
	}
	return true, nil
}

// clearHoldByID is clearHold for a connection not yet read in tx.
func (s *Store) clearHoldByID(ctx context.Context, tx *txn, id string, codes ...failure.Code) error {
	c, err := s.getConnection(ctx, tx, id, true)
	if err != nil {
		return err
	}
	_, err = s.clearHold(ctx, tx, &c, codes...)
	return err
}

// ClearHold implements store.Connections.
func (s *Store) ClearHold(ctx context.Context, id string, codes ...failure.Code) (store.Connection, bool, error) {
	var (
		out     store.Connection
		changed bool
	)
	err := s.tx(ctx, func(tx *txn) error {
		c, err := s.getConnection(ctx, tx, id, true)
		if err != nil {
			return err
		}
		changed, err = s.clearHold(ctx, tx, &c, codes...)
		out = c
		return err
	})
	return out, changed, s.dbErr("clear hold", err)
}

// clearBackoff clears c's backoff, leaving a hold as it is.
func (s *Store) clearBackoff(ctx context.Context, tx *txn, c *store.Connection) (bool, error) {
	if c.BackoffUntil.IsZero() {
		return false, nil
	}
	c.BackoffUntil = time.Time{}
	_, err := s.exec(ctx, tx, `UPDATE connections SET backoff_until = NULL WHERE id = ?`, c.ID)
	return err == nil, err
}
