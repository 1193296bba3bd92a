-- connhost store, version 5 (SQLite): launch provenance, run streaks,
-- schedule holds and backoff.

-- +goose Up
-- provenance is the JSON of a run's launch provenance (variable names and
-- layers, never values); NULL for runs from before this version and for
-- runs that ended before the credential was resolved.
ALTER TABLE runs ADD COLUMN provenance TEXT;

-- The streak: the latest counted run's outcome and the failures in a row
-- behind it, kept by FinishRun in the run's transaction.
ALTER TABLE connections ADD COLUMN last_run_status TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN last_run_at TEXT;
ALTER TABLE connections ADD COLUMN fail_code TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN fail_count INTEGER NOT NULL DEFAULT 0 CHECK (fail_count >= 0);
ALTER TABLE connections ADD COLUMN fail_since TEXT;
-- The hold: set by the first scheduled run refused or rejected for a
-- reason only a person can fix; no scheduled run is made while it is set.
ALTER TABLE connections ADD COLUMN hold_code TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN hold_message TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN hold_at TEXT;
ALTER TABLE connections ADD COLUMN hold_run_id TEXT NOT NULL DEFAULT '';
-- Schedule instants before backoff_until are skipped.
ALTER TABLE connections ADD COLUMN backoff_until TEXT;

-- The latest ended run of each connection seeds its streak.
UPDATE connections SET
    last_run_status = COALESCE((SELECT r.status FROM runs r WHERE r.connection_id = connections.id
        AND r.status IN ('succeeded', 'failed', 'refused') ORDER BY r.created_at DESC, r.id DESC LIMIT 1), ''),
    last_run_at = (SELECT r.ended_at FROM runs r WHERE r.connection_id = connections.id
        AND r.status IN ('succeeded', 'failed', 'refused') ORDER BY r.created_at DESC, r.id DESC LIMIT 1);
UPDATE connections SET
    fail_code = COALESCE((SELECT r.failure_code FROM runs r WHERE r.connection_id = connections.id
        AND r.status IN ('succeeded', 'failed', 'refused') ORDER BY r.created_at DESC, r.id DESC LIMIT 1), ''),
    fail_count = 1, fail_since = last_run_at
WHERE last_run_status IN ('failed', 'refused');

-- +goose Down
ALTER TABLE connections DROP COLUMN backoff_until;
ALTER TABLE connections DROP COLUMN hold_run_id;
ALTER TABLE connections DROP COLUMN hold_at;
ALTER TABLE connections DROP COLUMN hold_message;
ALTER TABLE connections DROP COLUMN hold_code;
ALTER TABLE connections DROP COLUMN fail_since;
ALTER TABLE connections DROP COLUMN fail_count;
ALTER TABLE connections DROP COLUMN fail_code;
ALTER TABLE connections DROP COLUMN last_run_at;
ALTER TABLE connections DROP COLUMN last_run_status;
ALTER TABLE runs DROP COLUMN provenance;
