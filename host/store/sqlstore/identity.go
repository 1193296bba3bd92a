package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
)

const storeIDKey = "store_id"

// StoreID implements store.Identity.
func (s *Store) StoreID(ctx context.Context) (string, bool, error) {
	var id string
	err := s.queryRow(ctx, s.w, `SELECT value FROM store_meta WHERE key = ?`, storeIDKey).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, s.dbErr("store id", err)
	}
	return id, true, nil
}

// InitStoreID implements store.Identity.
func (s *Store) InitStoreID(ctx context.Context, id string) (string, error) {
	var out string
	err := s.tx(ctx, func(tx *txn) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			storeIDKey, id); err != nil {
			return err
		}
		return s.queryRow(ctx, tx, `SELECT value FROM store_meta WHERE key = ?`, storeIDKey).Scan(&out)
	})
	return out, s.dbErr("init store id", err)
}

// CredentialKeyIDs implements store.Identity.
func (s *Store) CredentialKeyIDs(ctx context.Context) ([]uint32, error) {
	rows, err := s.query(ctx, s.r, `SELECT DISTINCT key_id FROM credentials WHERE ciphertext IS NOT NULL`)
	if err != nil {
		return nil, s.dbErr("credential key ids", err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.dbErr("credential key ids", err)
		}
		out = append(out, uint32(id))
	}
	slices.Sort(out)
	return out, s.dbErr("credential key ids", rows.Err())
}
