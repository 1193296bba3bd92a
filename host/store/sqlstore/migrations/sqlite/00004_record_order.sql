-- connhost store, version 4 (SQLite): records listed in emit order.

-- +goose Up
-- seq is a record's place in its connection's emit order: given when its
-- key is first written, kept when it is written again. Rows from before
-- this version keep 0, and list in (stream, key) order ahead of newer
-- ones. connections.record_seq is the last seq given.
ALTER TABLE records ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN record_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX records_order ON records (connection_id, stream, seq, key);

-- +goose Down
DROP INDEX records_order;
ALTER TABLE connections DROP COLUMN record_seq;
ALTER TABLE records DROP COLUMN seq;
