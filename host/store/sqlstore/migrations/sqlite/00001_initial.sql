-- connhost store, version 1 (SQLite).
-- Timestamps are fixed-width RFC 3339 UTC text with nanoseconds
-- ("2006-01-02T15:04:05.000000000Z"), so text order is time order.
-- JSON is stored as text; durations as integer nanoseconds.

-- +goose Up
CREATE TABLE connectors (
    key           TEXT PRIMARY KEY,
    version       TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    path          TEXT NOT NULL,
    sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
    registered_at TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE connections (
    id              TEXT PRIMARY KEY,
    connector_key   TEXT NOT NULL,
    label           TEXT NOT NULL DEFAULT '',
    config          TEXT NOT NULL DEFAULT '{}',
    schedule_spec   TEXT NOT NULL DEFAULT '',
    schedule_jitter INTEGER NOT NULL DEFAULT 0 CHECK (schedule_jitter >= 0),
    state           TEXT NOT NULL CHECK (state IN ('active', 'paused', 'revoked')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX connections_created ON connections (created_at, id);
CREATE INDEX connections_connector_key ON connections (connector_key, created_at, id);

CREATE TABLE credentials (
    connection_id    TEXT PRIMARY KEY REFERENCES connections (id),
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('active', 'revoked', 'deleted', 'quarantined')),
    names            TEXT NOT NULL,
    ciphertext       BLOB,
    key_id           INTEGER NOT NULL,
    captured_at      TEXT NOT NULL,
    rotated_at       TEXT,
    revoked_at       TEXT,
    quarantined_at   TEXT,
    deleted_at       TEXT,
    updated_at       TEXT NOT NULL,
    validity_at      TEXT,
    validity_valid   INTEGER,
    validity_message TEXT,
    -- a deleted credential holds no ciphertext; every other state holds one
    CHECK ((state = 'deleted') = (ciphertext IS NULL))
) STRICT;

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    -- no foreign key: runs are history and outlive their connection
    connection_id   TEXT NOT NULL,
    trigger         TEXT NOT NULL CHECK (trigger IN ('scheduled', 'retry', 'manual')),
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),
    retry_of        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'refused', 'cancelled')),
    failure_code    TEXT NOT NULL DEFAULT '',
    failure_message TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    ended_at        TEXT,
    records         INTEGER NOT NULL DEFAULT 0,
    host_id         TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX runs_created ON runs (created_at, id);
CREATE INDEX runs_connection_created ON runs (connection_id, created_at, id);
CREATE INDEX runs_status_created ON runs (status, created_at, id);

CREATE TABLE leases (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id),
    run_id        TEXT NOT NULL,
    holder        TEXT NOT NULL,
    acquired_at   TEXT NOT NULL,
    expires_at    TEXT NOT NULL
) STRICT;
CREATE INDEX leases_holder ON leases (holder);
CREATE INDEX leases_expires ON leases (expires_at);

CREATE TABLE records (
    connection_id TEXT NOT NULL REFERENCES connections (id),
    stream        TEXT NOT NULL CHECK (stream <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    data          TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (connection_id, stream, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id),
    state         BLOB NOT NULL,
    run_id        TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    operation   TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_target ON audit_events (target_kind, target_id, at, id);
CREATE INDEX audit_events_operation ON audit_events (operation, at, id);

-- The audit log is append-only even for code that bypasses the store API.
-- +goose StatementBegin
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
-- +goose StatementEnd

CREATE TABLE enrollment (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id),
    connector_key TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    evaluated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE locks;
DROP TABLE enrollment;
DROP TRIGGER audit_events_no_delete;
DROP TRIGGER audit_events_no_update;
DROP TABLE audit_events;
DROP TABLE checkpoints;
DROP TABLE records;
DROP TABLE leases;
DROP TABLE runs;
DROP TABLE credentials;
DROP TABLE connections;
DROP TABLE connectors;
