-- connhost store, version 2 (SQLite): the durable dispatch queue and the
-- cluster's hosts.

-- +goose Up
-- The schedule generation bumps on every change that moves a connection's
-- schedule (spec, jitter, pause, resume, revoke); last_due_at is the latest
-- instant recorded under it, so an instant is recorded once cluster-wide.
ALTER TABLE connections ADD COLUMN schedule_gen INTEGER NOT NULL DEFAULT 0 CHECK (schedule_gen >= 0);
ALTER TABLE connections ADD COLUMN last_due_at TEXT;
ALTER TABLE connections ADD COLUMN coalesced_ticks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN last_coalesced_at TEXT;

ALTER TABLE runs ADD COLUMN scheduled_for TEXT;
CREATE INDEX runs_host_created ON runs (host_id, created_at, id);

-- One occurrence per connection at most: the primary key is the
-- connection, so a tick that finds one pending or claimed coalesces.
CREATE TABLE occurrences (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id),
    id            TEXT NOT NULL,
    trigger       TEXT NOT NULL CHECK (trigger IN ('scheduled', 'retry', 'manual')),
    -- 0 for manual runs, which a worker takes first; 1 otherwise
    priority      INTEGER NOT NULL CHECK (priority IN (0, 1)),
    due_at        TEXT NOT NULL,
    run_at        TEXT NOT NULL,
    schedule_gen  INTEGER NOT NULL,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    retry_of      TEXT NOT NULL DEFAULT '',
    run_id        TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL CHECK (state IN ('pending', 'claimed')),
    claimed_by    TEXT NOT NULL DEFAULT '',
    claimed_at    TEXT,
    created_at    TEXT NOT NULL,
    CHECK ((state = 'claimed') = (claimed_by <> ''))
) STRICT, WITHOUT ROWID;
-- Only pending occurrences are looked up by due time: a claim takes its
-- row out of the index, a completion touches no index but the key.
CREATE INDEX occurrences_due ON occurrences (state, priority, run_at) WHERE state = 'pending';

CREATE TABLE hosts (
    id          TEXT PRIMARY KEY,
    addr        TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL DEFAULT '',
    started_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    runs_active INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL CHECK (status IN ('live', 'stopped', 'crashed')),
    ended_at    TEXT
) STRICT;
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
