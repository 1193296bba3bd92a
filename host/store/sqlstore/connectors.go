package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/connhost/connhost/host/store"
)

const connectorCols = `key, version, manifest, path, sha256, registered_at, updated_at`

func scanConnector(row interface{ Scan(...any) error }) (store.Connector, error) {
	var c store.Connector
	err := row.Scan(&c.Key, &c.Version, (*[]byte)(&c.Manifest), &c.Path, &c.SHA256,
		timeCol{&c.RegisteredAt}, timeCol{&c.UpdatedAt})
	return c, err
}

// UpsertConnector implements store.Connectors.
func (s *Store) UpsertConnector(ctx context.Context, reg store.ConnectorRegistration) (store.ConnectorUpsert, error) {
	if err := reg.Validate(); err != nil {
		return store.ConnectorUpsert{}, err
	}
	var out store.ConnectorUpsert
	err := s.tx(ctx, func(tx *txn) error {
		now := s.stamp()
		get := func() (store.Connector, error) {
			return scanConnector(s.queryRow(ctx, tx,
				`SELECT `+connectorCols+` FROM connectors WHERE key = ?`+s.d.ForUpdate, reg.Key))
		}
		prev, err := get()
		if errors.Is(err, sql.ErrNoRows) {
			// DO NOTHING: hosts booting together register the same
			// connectors at once; the one that loses reads the winner's
			// row (waiting for its commit) and goes on as an update.
			res, ierr := s.exec(ctx, tx, `INSERT INTO connectors (`+connectorCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (key) DO NOTHING`,
				reg.Key, reg.Version, string(reg.Manifest), reg.Path, reg.SHA256, s.bindTime(now), s.bindTime(now))
			if ierr != nil {
				return ierr
			}
			if n, aerr := affected(res); aerr != nil {
				return aerr
			} else if n == 1 {
				out = store.ConnectorUpsert{Created: true, Changed: true, Connector: store.Connector{
					Key: reg.Key, Version: reg.Version, Manifest: reg.Manifest, Path: reg.Path, SHA256: reg.SHA256,
					RegisteredAt: now, UpdatedAt: now,
				}}
				return nil
			}
			prev, err = get()
		}
		if err != nil {
			return err
		}
		out.Previous = &prev
		out.Changed = prev.Version != reg.Version || prev.SHA256 != reg.SHA256
		out.Connector = prev
		if !out.Changed && prev.Path == reg.Path && jsonEqual(prev.Manifest, reg.Manifest) {
			return nil
		}
		_, err = s.exec(ctx, tx, `UPDATE connectors SET version = ?, manifest = ?, path = ?, sha256 = ?, updated_at = ? WHERE key = ?`,
			reg.Version, string(reg.Manifest), reg.Path, reg.SHA256, s.bindTime(now), reg.Key)
		if err != nil {
			return err
		}
		out.Connector = store.Connector{
			Key: reg.Key, Version: reg.Version, Manifest: reg.Manifest, Path: reg.Path, SHA256: reg.SHA256,
			RegisteredAt: prev.RegisteredAt, UpdatedAt: now,
		}
		return nil
	})
	return out, s.dbErr("upsert connector", err)
}

// GetConnector implements store.Connectors.
func (s *Store) GetConnector(ctx context.Context, key string) (store.Connector, error) {
	c, err := scanConnector(s.queryRow(ctx, s.r, `SELECT `+connectorCols+` FROM connectors WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Connector{}, store.ConnectorNotFound(key)
	}
	return c, s.dbErr("get connector", err)
}

// ListConnectors implements store.Connectors.
func (s *Store) ListConnectors(ctx context.Context) ([]store.Connector, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+connectorCols+` FROM connectors ORDER BY key`)
	if err != nil {
		return nil, s.dbErr("list connectors", err)
	}
	defer rows.Close()
	var out []store.Connector
	for rows.Next() {
		c, err := scanConnector(rows)
		if err != nil {
			return nil, s.dbErr("list connectors", err)
		}
		out = append(out, c)
	}
	return out, s.dbErr("list connectors", rows.Err())
}
