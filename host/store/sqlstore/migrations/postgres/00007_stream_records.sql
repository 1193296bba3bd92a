-- connhost store, version 7 (PostgreSQL): records committed per stream.

-- +goose Up
-- stream_records is the JSON object of a run's committed records by
-- stream name ({"events": 20}), kept by CommitBatch in the transaction
-- that adds to records, so its counts always sum to records. It is
-- nullable, not NOT NULL DEFAULT '{}': NULL says "no count kept", which
-- is true of a run that has committed nothing yet and of every run from
-- before this version, whose records no table can split by stream (a
-- record row keeps only the batch that last wrote it). A default of '{}'
-- would claim such a run committed nothing to any stream. Nothing queries
-- inside it, so it is text, read and written whole, as provenance is.
ALTER TABLE runs ADD COLUMN stream_records text;

-- +goose Down
ALTER TABLE runs DROP COLUMN stream_records;
