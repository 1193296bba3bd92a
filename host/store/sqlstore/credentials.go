package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// credentialMetaCols never includes the ciphertext: read surfaces get
// metadata from a query that cannot return secret bytes.
const credentialMetaCols = `connection_id, kind, state, names, key_id, captured_at, rotated_at, revoked_at,
	quarantined_at, deleted_at, updated_at, validity_at, validity_valid, validity_message`

// scanCredentialMeta scans credentialMetaCols followed by extra columns.
func scanCredentialMeta(row interface{ Scan(...any) error }, extra ...any) (store.CredentialMeta, error) {
	var (
		m         store.CredentialMeta
		names     []byte
		keyID     int64
		checkedAt time.Time
		valid     sql.NullBool
		message   sql.NullString
	)
	dest := append([]any{&m.ConnectionID, &m.Kind, &m.State, &names, &keyID,
		timeCol{&m.CapturedAt}, timeCol{&m.RotatedAt}, timeCol{&m.RevokedAt},
		timeCol{&m.QuarantinedAt}, timeCol{&m.DeletedAt}, timeCol{&m.UpdatedAt},
		timeCol{&checkedAt}, &valid, &message}, extra...)
	if err := row.Scan(dest...); err != nil {
		return m, err
	}
	if err := json.Unmarshal(names, &m.Names); err != nil {
		return m, fmt.Errorf("decode credential names: %w", err)
	}
	m.KeyID = uint32(keyID)
	if valid.Valid {
		m.Validity = &store.Validity{CheckedAt: checkedAt, Valid: valid.Bool, Message: message.String}
	}
	return m, nil
}

// credentialMissing classifies a missing credential row: the connection is
// unknown, or it never stored a credential.
func (s *Store) credentialMissing(ctx context.Context, db querier, connID string) error {
	ok, err := s.connectionExists(ctx, db, connID, false)
	if err != nil {
		return err
	}
	if !ok {
		return store.ConnectionNotFound(connID)
	}
	return fmt.Errorf("%w: connection %q", store.ErrCredentialNotFound, connID)
}

func (s *Store) getCredentialMeta(ctx context.Context, db querier, connID string, lock bool) (store.CredentialMeta, error) {
	query := `SELECT ` + credentialMetaCols + ` FROM credentials WHERE connection_id = ?`
	if lock {
		query += s.d.ForUpdate
	}
	m, err := scanCredentialMeta(s.queryRow(ctx, db, query, connID))
	if errors.Is(err, sql.ErrNoRows) {
		return m, s.credentialMissing(ctx, db, connID)
	}
	return m, err
}

// HasActiveCredential implements store.Presence. It reads the state column
// only.
func (s *Store) HasActiveCredential(ctx context.Context, connectionID string) (bool, error) {
	var state string
	err := s.queryRow(ctx, s.r, `SELECT state FROM credentials WHERE connection_id = ?`, connectionID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.dbErr("has active credential", err)
	}
	return store.CredentialState(state) == store.CredentialActive, nil
}

// ActiveCredentialKey implements store.Presence. It reads the state and
// key id columns only.
func (s *Store) ActiveCredentialKey(ctx context.Context, connectionID string) (uint32, bool, error) {
	var (
		state string
		key   int64
	)
	err := s.queryRow(ctx, s.r, `SELECT state, key_id FROM credentials WHERE connection_id = ?`, connectionID).Scan(&state, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.dbErr("active credential key", err)
	}
	if store.CredentialState(state) != store.CredentialActive {
		return 0, false, nil
	}
	return uint32(key), true, nil
}

// CaptureCredential implements store.Credentials.
func (s *Store) CaptureCredential(ctx context.Context, sc store.SealedCredential) (store.CredentialMeta, error) {
	if err := sc.Validate(); err != nil {
		return store.CredentialMeta{}, err
	}
	names, err := json.Marshal(sc.Names)
	if err != nil {
		return store.CredentialMeta{}, err
	}
	var out store.CredentialMeta
	err = s.tx(ctx, func(tx *txn) error {
		if err := s.requireConnection(ctx, tx, sc.ConnectionID, true); err != nil {
			return err
		}
		now := s.stamp()
		_, err := s.exec(ctx, tx, `INSERT INTO credentials (connection_id, kind, state, names, ciphertext, key_id,
				captured_at, rotated_at, revoked_at, quarantined_at, deleted_at, updated_at,
				validity_at, validity_valid, validity_message)
			VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, NULL, NULL, NULL)
			ON CONFLICT (connection_id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
				names = excluded.names, ciphertext = excluded.ciphertext, key_id = excluded.key_id,
				captured_at = excluded.captured_at, rotated_at = NULL, revoked_at = NULL,
				quarantined_at = NULL, deleted_at = NULL, updated_at = excluded.updated_at,
				validity_at = NULL, validity_valid = NULL, validity_message = NULL`,
			sc.ConnectionID, string(sc.Kind), string(store.CredentialActive), string(names), sc.Ciphertext,
			int64(sc.KeyID), s.bindTime(now), s.bindTime(now))
		if err != nil {
			return err
		}
		// A new credential addresses a hold over the old one.
		if err := s.clearHoldByID(ctx, tx, sc.ConnectionID, store.CredentialHoldCodes...); err != nil {
			return err
		}
		out = store.CredentialMeta{
			ConnectionID: sc.ConnectionID, Kind: sc.Kind, State: store.CredentialActive,
			Names: slices.Clone(sc.Names), KeyID: sc.KeyID, CapturedAt: now, UpdatedAt: now,
		}
		return nil
	})
	return out, s.dbErr("capture credential", err)
}

// RotateCredential implements store.Credentials.
func (s *Store) RotateCredential(ctx context.Context, sc store.SealedCredential) (store.CredentialMeta, error) {
	if err := sc.Validate(); err != nil {
		return store.CredentialMeta{}, err
	}
	names, err := json.Marshal(sc.Names)
	if err != nil {
		return store.CredentialMeta{}, err
	}
	return s.transitionCredential(ctx, sc.ConnectionID, "rotate", []store.CredentialState{store.CredentialActive},
		func(tx *txn, m *store.CredentialMeta, now time.Time) error {
			if m.Kind != sc.Kind {
				return &store.InvalidError{Field: "kind", Reason: fmt.Sprintf("stored credential is %s, not %s", m.Kind, sc.Kind)}
			}
			m.Names, m.KeyID, m.RotatedAt, m.Validity = slices.Clone(sc.Names), sc.KeyID, now, nil
			_, err := s.exec(ctx, tx, `UPDATE credentials SET names = ?, ciphertext = ?, key_id = ?, rotated_at = ?,
					updated_at = ?, validity_at = NULL, validity_valid = NULL, validity_message = NULL
				WHERE connection_id = ?`,
				string(names), sc.Ciphertext, int64(sc.KeyID), s.bindTime(now), s.bindTime(now), sc.ConnectionID)
			if err != nil {
				return err
			}
			return s.clearHoldByID(ctx, tx, sc.ConnectionID, store.CredentialHoldCodes...)
		})
}

// RevokeCredential implements store.Credentials.
func (s *Store) RevokeCredential(ctx context.Context, connectionID string) (store.CredentialMeta, error) {
	return s.transitionCredential(ctx, connectionID, "revoke",
		[]store.CredentialState{store.CredentialActive, store.CredentialQuarantined},
		func(tx *txn, m *store.CredentialMeta, now time.Time) error {
			m.State, m.RevokedAt = store.CredentialRevoked, now
			_, err := s.exec(ctx, tx, `UPDATE credentials SET state = ?, revoked_at = ?, updated_at = ? WHERE connection_id = ?`,
				string(m.State), s.bindTime(now), s.bindTime(now), connectionID)
			return err
		})
}

// DeleteCredential implements store.Credentials.
func (s *Store) DeleteCredential(ctx context.Context, connectionID string) (store.CredentialMeta, error) {
	return s.transitionCredential(ctx, connectionID, "delete",
		[]store.CredentialState{store.CredentialActive, store.CredentialRevoked, store.CredentialQuarantined},
		func(tx *txn, m *store.CredentialMeta, now time.Time) error {
			m.State, m.DeletedAt = store.CredentialDeleted, now
			_, err := s.exec(ctx, tx, `UPDATE credentials SET state = ?, ciphertext = NULL, deleted_at = ?, updated_at = ?
				WHERE connection_id = ?`,
				string(m.State), s.bindTime(now), s.bindTime(now), connectionID)
			return err
		})
}

// QuarantineCredential implements store.Credentials.
func (s *Store) QuarantineCredential(ctx context.Context, connectionID string) (store.CredentialMeta, error) {
	return s.transitionCredential(ctx, connectionID, "quarantine", []store.CredentialState{store.CredentialActive},
		func(tx *txn, m *store.CredentialMeta, now time.Time) error {
			m.State, m.QuarantinedAt = store.CredentialQuarantined, now
			_, err := s.exec(ctx, tx, `UPDATE credentials SET state = ?, quarantined_at = ?, updated_at = ? WHERE connection_id = ?`,
				string(m.State), s.bindTime(now), s.bindTime(now), connectionID)
			return err
		})
}

// SetCredentialValidity implements store.Credentials.
func (s *Store) SetCredentialValidity(ctx context.Context, connectionID string, valid bool, message string) (store.CredentialMeta, error) {
	if len(message) > 4096 {
		return store.CredentialMeta{}, &store.InvalidError{Field: "message", Reason: "longer than 4096 bytes"}
	}
	return s.transitionCredential(ctx, connectionID, "set validity",
		[]store.CredentialState{store.CredentialActive, store.CredentialRevoked, store.CredentialQuarantined},
		func(tx *txn, m *store.CredentialMeta, now time.Time) error {
			m.Validity = &store.Validity{CheckedAt: now, Valid: valid, Message: message}
			_, err := s.exec(ctx, tx, `UPDATE credentials SET validity_at = ?, validity_valid = ?, validity_message = ?
				WHERE connection_id = ?`,
				s.bindTime(now), valid, message, connectionID)
			if err != nil || !valid {
				return err
			}
			// The provider accepts the credential again.
			return s.clearHoldByID(ctx, tx, connectionID, failure.CredentialRejected)
		})
}

// transitionCredential loads the credential under a row lock, checks its
// state is one of from, and lets apply update the row and m.
func (s *Store) transitionCredential(ctx context.Context, connID, op string, from []store.CredentialState,
	apply func(tx *txn, m *store.CredentialMeta, now time.Time) error,
) (store.CredentialMeta, error) {
	var out store.CredentialMeta
	err := s.tx(ctx, func(tx *txn) error {
		m, err := s.getCredentialMeta(ctx, tx, connID, true)
		if err != nil {
			return err
		}
		if !slices.Contains(from, m.State) {
			return store.Conflict(&store.CredentialStateError{ConnectionID: connID, Op: op, State: m.State})
		}
		now := s.stamp()
		if err := apply(tx, &m, now); err != nil {
			return err
		}
		m.UpdatedAt = now
		out = m
		return nil
	})
	return out, s.dbErr(op+" credential", err)
}

// GetCredential implements store.Credentials.
func (s *Store) GetCredential(ctx context.Context, connectionID string) (store.Credential, error) {
	var c store.Credential
	m, err := scanCredentialMeta(s.queryRow(ctx, s.r,
		`SELECT `+credentialMetaCols+`, ciphertext FROM credentials WHERE connection_id = ?`, connectionID),
		&c.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.credentialMissing(ctx, s.r, connectionID)
	}
	if err != nil {
		return store.Credential{}, s.dbErr("get credential", err)
	}
	c.CredentialMeta = m
	return c, nil
}

// GetCredentialMeta implements store.Credentials.
func (s *Store) GetCredentialMeta(ctx context.Context, connectionID string) (store.CredentialMeta, error) {
	m, err := s.getCredentialMeta(ctx, s.r, connectionID, false)
	if err != nil {
		return store.CredentialMeta{}, s.dbErr("get credential metadata", err)
	}
	return m, nil
}

// CredentialMetas implements store.Credentials.
func (s *Store) CredentialMetas(ctx context.Context, connectionIDs []string) (map[string]store.CredentialMeta, error) {
	out := make(map[string]store.CredentialMeta, len(connectionIDs))
	err := s.byIDChunks(ctx, `SELECT `+credentialMetaCols+` FROM credentials WHERE connection_id IN (%s)`, connectionIDs,
		func(rows *sql.Rows) error {
			m, err := scanCredentialMeta(rows)
			if err == nil {
				out[m.ConnectionID] = m
			}
			return err
		})
	if err != nil {
		return nil, s.dbErr("list credential metadata", err)
	}
	return out, nil
}

// ListCredentialCiphertexts implements store.Credentials.
func (s *Store) ListCredentialCiphertexts(ctx context.Context, after string, limit int) ([]store.CredentialCiphertext, error) {
	rows, err := s.query(ctx, s.r, `SELECT connection_id, kind, state, key_id, ciphertext FROM credentials
		WHERE ciphertext IS NOT NULL AND connection_id > ? ORDER BY connection_id LIMIT ?`,
		after, store.PageLimit(limit))
	if err != nil {
		return nil, s.dbErr("list credential ciphertexts", err)
	}
	defer rows.Close()
	var out []store.CredentialCiphertext
	for rows.Next() {
		var (
			c     store.CredentialCiphertext
			keyID int64
		)
		if err := rows.Scan(&c.ConnectionID, &c.Kind, &c.State, &keyID, &c.Ciphertext); err != nil {
			return nil, s.dbErr("list credential ciphertexts", err)
		}
		c.KeyID = uint32(keyID)
		out = append(out, c)
	}
	return out, s.dbErr("list credential ciphertexts", rows.Err())
}

// CredentialKeyUse implements store.Credentials.
func (s *Store) CredentialKeyUse(ctx context.Context, keyID uint32) (store.KeyUse, error) {
	rows, err := s.query(ctx, s.r, `SELECT state, COUNT(*) FROM credentials
		WHERE ciphertext IS NOT NULL AND key_id = ? GROUP BY state`, int64(keyID))
	if err != nil {
		return store.KeyUse{}, s.dbErr("credential key use", err)
	}
	defer rows.Close()
	var use store.KeyUse
	for rows.Next() {
		var (
			state string
			n     int
		)
		if err := rows.Scan(&state, &n); err != nil {
			return store.KeyUse{}, s.dbErr("credential key use", err)
		}
		switch store.CredentialState(state) {
		case store.CredentialActive:
			use.Active = n
		case store.CredentialRevoked:
			use.Revoked = n
		case store.CredentialQuarantined:
			use.Quarantined = n
		}
	}
	return use, s.dbErr("credential key use", rows.Err())
}

// ReplaceCiphertext implements store.Credentials.
func (s *Store) ReplaceCiphertext(ctx context.Context, connectionID string, oldCT, newCT []byte, keyID uint32) error {
	if len(oldCT) == 0 || len(newCT) == 0 {
		return &store.InvalidError{Field: "ciphertext", Reason: "required"}
	}
	err := s.tx(ctx, func(tx *txn) error {
		var (
			state string
			cur   []byte
		)
		err := s.queryRow(ctx, tx, `SELECT state, ciphertext FROM credentials WHERE connection_id = ?`+s.d.ForUpdate,
			connectionID).Scan(&state, &cur)
		if errors.Is(err, sql.ErrNoRows) {
			return s.credentialMissing(ctx, tx, connectionID)
		}
		if err != nil {
			return err
		}
		if cur == nil {
			return store.Conflict(&store.CredentialStateError{ConnectionID: connectionID, Op: "replace ciphertext", State: store.CredentialState(state)})
		}
		if !bytes.Equal(cur, oldCT) {
			return fmt.Errorf("%w: connection %q", store.ErrCiphertextChanged, connectionID)
		}
		_, err = s.exec(ctx, tx, `UPDATE credentials SET ciphertext = ?, key_id = ?, updated_at = ? WHERE connection_id = ?`,
			newCT, int64(keyID), s.bindTime(s.stamp()), connectionID)
		return err
	})
	return s.dbErr("replace ciphertext", err)
}
