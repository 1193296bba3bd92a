-- connhost store, version 6 (SQLite): compact records.

-- +goose Up
-- A stream is interned once per connection: records carry its integer id,
-- which stands for the connection and the stream name together, instead
-- of repeating both texts in every row.
CREATE TABLE streams (
    id            INTEGER PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id),
    name          TEXT NOT NULL CHECK (name <> ''),
    UNIQUE (connection_id, name)
) STRICT;

-- One row per committed batch: the run that wrote it and when. A record
-- points at the batch that last wrote it.
CREATE TABLE record_batches (
    id            INTEGER PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id),
    run_id        TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX record_batches_connection ON record_batches (connection_id);

-- id is the record's place in the emit order: a new key takes the next
-- one, and an upsert keeps the row, so a key written again keeps its
-- place. records_order's implicit id suffix lists a stream in that order.
CREATE TABLE records_v6 (
    id        INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    key       TEXT NOT NULL CHECK (key <> ''),
    data      TEXT NOT NULL,
    batch_id  INTEGER NOT NULL
) STRICT;

INSERT INTO streams (connection_id, name)
    SELECT DISTINCT connection_id, stream FROM records ORDER BY connection_id, stream;
INSERT INTO record_batches (connection_id, run_id, updated_at)
    SELECT DISTINCT connection_id, run_id, updated_at FROM records ORDER BY connection_id, updated_at, run_id;
CREATE UNIQUE INDEX record_batches_move ON record_batches (connection_id, run_id, updated_at);
INSERT INTO records_v6 (stream_id, key, data, batch_id)
    SELECT s.id, r.key, r.data, b.id FROM records r
    JOIN streams s ON s.connection_id = r.connection_id AND s.name = r.stream
    JOIN record_batches b ON b.connection_id = r.connection_id AND b.run_id = r.run_id AND b.updated_at = r.updated_at
    ORDER BY r.connection_id, r.stream, r.seq, r.key;
DROP INDEX record_batches_move;
DROP TABLE records;
ALTER TABLE records_v6 RENAME TO records;
CREATE UNIQUE INDEX records_key ON records (stream_id, key);
CREATE INDEX records_order ON records (stream_id);
ALTER TABLE connections DROP COLUMN record_seq;

-- +goose Down
ALTER TABLE connections ADD COLUMN record_seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE records_v4 (
    connection_id TEXT NOT NULL REFERENCES connections (id),
    stream        TEXT NOT NULL CHECK (stream <> ''),
    key           TEXT NOT NULL CHECK (key <> ''),
    data          TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    seq           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, stream, key)
) STRICT, WITHOUT ROWID;
INSERT INTO records_v4 (connection_id, stream, key, data, run_id, updated_at, seq)
    SELECT s.connection_id, s.name, r.key, r.data, b.run_id, b.updated_at, r.id FROM records r
    JOIN streams s ON s.id = r.stream_id
    JOIN record_batches b ON b.id = r.batch_id;
UPDATE connections SET record_seq = COALESCE((SELECT max(r.id) FROM records r), 0);
DROP TABLE records;
DROP TABLE record_batches;
DROP TABLE streams;
ALTER TABLE records_v4 RENAME TO records;
CREATE INDEX records_order ON records (connection_id, stream, seq, key);
