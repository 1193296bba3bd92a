-- connhost store, version 3 (SQLite): the store's identity.

-- +goose Up
-- One row per key. store_id is written at the first start and copied
-- into the data dir (store.id): a data dir whose store comes back empty,
-- or that is pointed at another store, is refused at boot.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE store_meta;
