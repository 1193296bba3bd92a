-- connhost store, version 2 (PostgreSQL): the durable dispatch queue and
-- the cluster's hosts. Same tables, columns and constraints as the SQLite
-- migration of the same version.

-- +goose Up
-- The schedule generation bumps on every change that moves a connection's
-- schedule (spec, jitter, pause, resume, revoke); last_due_at is the latest
-- instant recorded under it, so an instant is recorded once cluster-wide.
ALTER TABLE connections ADD COLUMN schedule_gen bigint NOT NULL DEFAULT 0 CHECK (schedule_gen >= 0);
ALTER TABLE connections ADD COLUMN last_due_at timestamptz;
ALTER TABLE connections ADD COLUMN coalesced_ticks bigint NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN last_coalesced_at timestamptz;

ALTER TABLE runs ADD COLUMN scheduled_for timestamptz;
CREATE INDEX runs_host_created ON runs (host_id, created_at, id);

-- One occurrence per connection at most: the primary key is the
-- connection, so a tick that finds one pending or claimed coalesces.
CREATE TABLE occurrences (
    connection_id text PRIMARY KEY REFERENCES connections (id),
    id            text NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('scheduled', 'retry', 'manual')),
    -- 0 for manual runs, which a worker takes first; 1 otherwise
    priority      smallint NOT NULL CHECK (priority IN (0, 1)),
    due_at        timestamptz NOT NULL,
    run_at        timestamptz NOT NULL,
    schedule_gen  bigint NOT NULL,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    retry_of      text NOT NULL DEFAULT '',
    run_id        text NOT NULL DEFAULT '',
    state         text NOT NULL CHECK (state IN ('pending', 'claimed')),
    claimed_by    text NOT NULL DEFAULT '',
    claimed_at    timestamptz,
    created_at    timestamptz NOT NULL,
    CHECK ((state = 'claimed') = (claimed_by <> ''))
);
-- Only pending occurrences are looked up by due time: a claim takes its
-- row out of the index, a completion touches no index but the key.
CREATE INDEX occurrences_due ON occurrences (state, priority, run_at) WHERE state = 'pending';

CREATE TABLE hosts (
    id          text PRIMARY KEY,
    addr        text NOT NULL DEFAULT '',
    version     text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    runs_active integer NOT NULL DEFAULT 0,
    status      text NOT NULL CHECK (status IN ('live', 'stopped', 'crashed')),
    ended_at    timestamptz
);
CREATE INDEX hosts_status_seen ON hosts (status, last_seen);

-- +goose Down
DROP TABLE hosts;
DROP TABLE occurrences;
DROP INDEX runs_host_created;
ALTER TABLE runs DROP COLUMN scheduled_for;
ALTER TABLE connections DROP COLUMN last_coalesced_at;
ALTER TABLE connections DROP COLUMN coalesced_ticks;
ALTER TABLE connections DROP COLUMN last_due_at;
ALTER TABLE connections DROP COLUMN schedule_gen;
