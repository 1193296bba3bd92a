-- connhost store, version 1 (PostgreSQL).
-- Same tables, columns and constraints as the SQLite migration of the same
-- version; timestamps are timestamptz (microsecond precision), JSON is jsonb,
-- durations are bigint nanoseconds.

-- +goose Up
CREATE TABLE connectors (
    key           text PRIMARY KEY,
    version       text NOT NULL,
    manifest      jsonb NOT NULL,
    path          text NOT NULL,
    sha256        text NOT NULL CHECK (length(sha256) = 64),
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE connections (
    id              text PRIMARY KEY,
    connector_key   text NOT NULL,
    label           text NOT NULL DEFAULT '',
    config          jsonb NOT NULL DEFAULT '{}',
    schedule_spec   text NOT NULL DEFAULT '',
    schedule_jitter bigint NOT NULL DEFAULT 0 CHECK (schedule_jitter >= 0),
    state           text NOT NULL CHECK (state IN ('active', 'paused', 'revoked')),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX connections_created ON connections (created_at, id);
CREATE INDEX connections_connector_key ON connections (connector_key, created_at, id);

CREATE TABLE credentials (
    connection_id    text PRIMARY KEY REFERENCES connections (id),
    kind             text NOT NULL,
    state            text NOT NULL CHECK (state IN ('active', 'revoked', 'deleted', 'quarantined')),
    names            jsonb NOT NULL,
    ciphertext       bytea,
    key_id           bigint NOT NULL,
    captured_at      timestamptz NOT NULL,
    rotated_at       timestamptz,
    revoked_at       timestamptz,
    quarantined_at   timestamptz,
    deleted_at       timestamptz,
    updated_at       timestamptz NOT NULL,
    validity_at      timestamptz,
    validity_valid   boolean,
    validity_message text,
    CHECK ((state = 'deleted') = (ciphertext IS NULL))
);

CREATE TABLE runs (
    id              text PRIMARY KEY,
    -- no foreign key: runs are history and outlive their connection
    connection_id   text NOT NULL,
    trigger         text NOT NULL CHECK (trigger IN ('scheduled', 'retry', 'manual')),
    attempt         integer NOT NULL CHECK (attempt >= 1),
    retry_of        text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'refused', 'cancelled')),
    failure_code    text NOT NULL DEFAULT '',
    failure_message text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    started_at      timestamptz,
    ended_at        timestamptz,
    records         bigint NOT NULL DEFAULT 0,
    host_id         text NOT NULL DEFAULT ''
);
CREATE INDEX runs_created ON runs (created_at, id);
CREATE INDEX runs_connection_created ON runs (connection_id, created_at, id);
CREATE INDEX runs_status_created ON runs (status, created_at, id);

CREATE TABLE leases (
    connection_id text PRIMARY KEY REFERENCES connections (id),
    run_id        text NOT NULL,
    holder        text NOT NULL,
    acquired_at   timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX leases_holder ON leases (holder);
CREATE INDEX leases_expires ON leases (expires_at);

CREATE TABLE records (
    connection_id text NOT NULL REFERENCES connections (id),
    stream        text NOT NULL CHECK (stream <> ''),
    key           text NOT NULL CHECK (key <> ''),
    data          jsonb NOT NULL,
    run_id        text NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (connection_id, stream, key)
);

CREATE TABLE checkpoints (
    connection_id text PRIMARY KEY REFERENCES connections (id),
    state         bytea NOT NULL,
    run_id        text NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE audit_events (
    id          text PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    operation   text NOT NULL,
    target_kind text NOT NULL,
    target_id   text NOT NULL DEFAULT '',
    outcome     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_target ON audit_events (target_kind, target_id, at, id);
CREATE INDEX audit_events_operation ON audit_events (operation, at, id);

-- The audit log is append-only even for code that bypasses the store API.
-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE enrollment (
    connection_id text PRIMARY KEY REFERENCES connections (id),
    connector_key text NOT NULL,
    outcome       text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    evaluated_at  timestamptz NOT NULL
);

CREATE TABLE locks (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE locks;
DROP TABLE enrollment;
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
DROP TABLE checkpoints;
DROP TABLE records;
DROP TABLE leases;
DROP TABLE runs;
DROP TABLE credentials;
DROP TABLE connections;
DROP TABLE connectors;
