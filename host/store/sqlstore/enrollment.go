package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/connhost/connhost/host/store"
)

const enrollmentCols = `connection_id, connector_key, outcome, reason, evaluated_at`

// ReplaceEnrollment implements store.Enrollment.
func (s *Store) ReplaceEnrollment(ctx context.Context, entries []store.EnrollmentEntry) error {
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return err
		}
		if seen[e.ConnectionID] {
			return &store.InvalidError{Field: fmt.Sprintf("entries[%d].connection_id", i), Reason: "repeated"}
		}
		seen[e.ConnectionID] = true
	}
	err := s.tx(ctx, func(tx *txn) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM enrollment`); err != nil {
			return err
		}
		now := s.bindTime(s.stamp())
		for _, e := range entries {
			if err := s.requireConnection(ctx, tx, e.ConnectionID, false); err != nil {
				return err
			}
			// An upsert: hosts booting together replace the report at
			// once, and a row another one inserted since our DELETE is
			// overwritten rather than a unique violation.
			_, err := s.exec(ctx, tx, `INSERT INTO enrollment (`+enrollmentCols+`) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (connection_id) DO UPDATE SET connector_key = excluded.connector_key,
					outcome = excluded.outcome, reason = excluded.reason, evaluated_at = excluded.evaluated_at`,
				e.ConnectionID, e.ConnectorKey, string(e.Outcome), e.Reason, now)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return s.dbErr("replace enrollment", err)
}

// UpsertEnrollment implements store.Enrollment.
func (s *Store) UpsertEnrollment(ctx context.Context, e store.EnrollmentEntry) (store.EnrollmentEntry, error) {
	if err := e.Validate(); err != nil {
		return store.EnrollmentEntry{}, err
	}
	err := s.tx(ctx, func(tx *txn) error {
		if err := s.requireConnection(ctx, tx, e.ConnectionID, false); err != nil {
			return err
		}
		e.EvaluatedAt = s.stamp()
		_, err := s.exec(ctx, tx, `INSERT INTO enrollment (`+enrollmentCols+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (connection_id) DO UPDATE SET connector_key = excluded.connector_key,
				outcome = excluded.outcome, reason = excluded.reason, evaluated_at = excluded.evaluated_at`,
			e.ConnectionID, e.ConnectorKey, string(e.Outcome), e.Reason, s.bindTime(e.EvaluatedAt))
		return err
	})
	if err != nil {
		return store.EnrollmentEntry{}, s.dbErr("upsert enrollment", err)
	}
	return e, nil
}

// ListEnrollment implements store.Enrollment.
func (s *Store) ListEnrollment(ctx context.Context) ([]store.EnrollmentEntry, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+enrollmentCols+` FROM enrollment ORDER BY connection_id`)
	if err != nil {
		return nil, s.dbErr("list enrollment", err)
	}
	defer rows.Close()
	var out []store.EnrollmentEntry
	for rows.Next() {
		var e store.EnrollmentEntry
		if err := rows.Scan(&e.ConnectionID, &e.ConnectorKey, &e.Outcome, &e.Reason, timeCol{&e.EvaluatedAt}); err != nil {
			return nil, s.dbErr("list enrollment", err)
		}
		out = append(out, e)
	}
	return out, s.dbErr("list enrollment", rows.Err())
}

// EnrollmentOf implements store.Enrollment.
func (s *Store) EnrollmentOf(ctx context.Context, connectionIDs []string) (map[string]store.EnrollmentEntry, error) {
	out := make(map[string]store.EnrollmentEntry, len(connectionIDs))
	err := s.byIDChunks(ctx, `SELECT `+enrollmentCols+` FROM enrollment WHERE connection_id IN (%s)`, connectionIDs,
		func(rows *sql.Rows) error {
			var e store.EnrollmentEntry
			if err := rows.Scan(&e.ConnectionID, &e.ConnectorKey, &e.Outcome, &e.Reason, timeCol{&e.EvaluatedAt}); err != nil {
				return err
			}
			out[e.ConnectionID] = e
			return nil
		})
	if err != nil {
		return nil, s.dbErr("read enrollment entries", err)
	}
	return out, nil
}
