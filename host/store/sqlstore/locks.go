package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/connhost/connhost/host/store"
)

// AcquireLock implements store.Locks.
func (s *Store) AcquireLock(ctx context.Context, name, holder string, ttl time.Duration) (store.Lock, error) {
	switch {
	case name == "":
		return store.Lock{}, &store.InvalidError{Field: "name", Reason: "required"}
	case holder == "":
		return store.Lock{}, &store.InvalidError{Field: "holder", Reason: "required"}
	case ttl <= 0:
		return store.Lock{}, &store.InvalidError{Field: "ttl", Reason: "must be positive"}
	}
	var out store.Lock
	err := s.tx(ctx, func(tx *txn) error {
		now := s.stamp()
		want := store.Lock{Name: name, Holder: holder, AcquiredAt: now, ExpiresAt: s.trunc(now.Add(ttl))}
		var cur store.Lock
		err := s.queryRow(ctx, tx, `SELECT name, holder, acquired_at, expires_at FROM locks WHERE name = ?`+s.d.ForUpdate, name).
			Scan(&cur.Name, &cur.Holder, timeCol{&cur.AcquiredAt}, timeCol{&cur.ExpiresAt})
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res, err := s.exec(ctx, tx, `INSERT INTO locks (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (name) DO NOTHING`,
				name, holder, s.bindTime(want.AcquiredAt), s.bindTime(want.ExpiresAt))
			if err != nil {
				return err
			}
			if n, err := affected(res); err != nil {
				return err
			} else if n == 0 { // inserted concurrently
				return fmt.Errorf("%w: %q", store.ErrLockHeld, name)
			}
			out = want
			return nil
		case err != nil:
			return err
		case cur.Holder == holder:
			want.AcquiredAt = cur.AcquiredAt
		case now.Before(cur.ExpiresAt):
			return fmt.Errorf("%w: %q", store.ErrLockHeld, name)
		}
		// Extend our own lock or take over an expired one, compare-and-swap
		// on the holder we read.
		res, err := s.exec(ctx, tx, `UPDATE locks SET holder = ?, acquired_at = ?, expires_at = ? WHERE name = ? AND holder = ?`,
			holder, s.bindTime(want.AcquiredAt), s.bindTime(want.ExpiresAt), name, cur.Holder)
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: %q", store.ErrLockHeld, name)
		}
		out = want
		return nil
	})
	if err != nil {
		return store.Lock{}, s.dbErr("acquire lock", err)
	}
	return out, nil
}

// ReleaseLock implements store.Locks.
func (s *Store) ReleaseLock(ctx context.Context, name, holder string) error {
	res, err := s.exec(ctx, s.w, `DELETE FROM locks WHERE name = ? AND holder = ?`, name, holder)
	if err != nil {
		return s.dbErr("release lock", err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %q by %q", store.ErrLockNotHeld, name, holder)
	}
	return nil
}
