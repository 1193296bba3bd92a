/*
 * ref: make bench-compare's SQLite bulk-load reference.
 *
 * Upserts the rows a demo run of N records commits -- stream "events",
 * key the decimal id, data {"id":i,"seq":i,"connection_id":"<conn>"} --
 * into connhost's records table as it is at commit ada1a29 (migrations
 * 00001 and 00004: WITHOUT ROWID, primary key (connection_id, stream,
 * key), index records_order), with connhost's SQLite settings (WAL,
 * synchronous=FULL, foreign_keys=ON, secure_delete=ON), from one process:
 * one prepared INSERT ... ON CONFLICT DO UPDATE, one transaction per
 * 1,000 rows.
 *
 * usage: ref DB N CONNECTION_ID RUN_ID
 * prints: "rows N seconds S" (S: the load alone, schema excluded).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS_PER_TX 1000

static const char *schema =
    "PRAGMA busy_timeout = 5000;"
    "PRAGMA foreign_keys = ON;"
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = FULL;"
    "PRAGMA secure_delete = ON;"
    /* The parent row the foreign key needs (connhost's connections table
       has more columns; only its key matters to the records). */
    "CREATE TABLE connections (id TEXT PRIMARY KEY, record_seq INTEGER NOT NULL DEFAULT 0) STRICT;"
    /* 00001_initial.sql + 00004_record_order.sql, as at ada1a29. */
    "CREATE TABLE records ("
    "    connection_id TEXT NOT NULL REFERENCES connections (id),"
    "    stream        TEXT NOT NULL CHECK (stream <> ''),"
    "    key           TEXT NOT NULL CHECK (key <> ''),"
    "    data          TEXT NOT NULL,"
    "    run_id        TEXT NOT NULL,"
    "    updated_at    TEXT NOT NULL,"
    "    PRIMARY KEY (connection_id, stream, key)"
    ") STRICT, WITHOUT ROWID;"
    "ALTER TABLE records ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX records_order ON records (connection_id, stream, seq, key);";

static const char *upsert =
    "INSERT INTO records (connection_id, stream, key, data, run_id, updated_at, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (connection_id, stream, key) DO UPDATE SET "
    "data = excluded.data, run_id = excluded.run_id, updated_at = excluded.updated_at";

static void die(sqlite3 *db, const char *what) {
	fprintf(stderr, "ref: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
	exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "ref: %s: %s\n", sql, msg);
		exit(1);
	}
}

/* stamp writes now as connhost stores times: 2006-01-02T15:04:05.000000000Z */
static void stamp(char *buf, size_t n) {
	struct timespec ts;
	struct tm tm;
	char sec[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%09ldZ", sec, ts.tv_nsec);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: ref DB N CONNECTION_ID RUN_ID\n");
		return 2;
	}
	const char *path = argv[1], *conn = argv[3], *run = argv[4];
	long long n = atoll(argv[2]);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(db, "open");
	exec(db, schema);
	sqlite3_stmt *parent;
	if (sqlite3_prepare_v2(db, "INSERT INTO connections (id) VALUES (?)", -1, &parent, NULL) != SQLITE_OK)
		die(db, "prepare connection");
	sqlite3_bind_text(parent, 1, conn, -1, SQLITE_STATIC);
	if (sqlite3_step(parent) != SQLITE_DONE)
		die(db, "insert connection");
	sqlite3_finalize(parent);

	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, upsert, -1, &st, NULL) != SQLITE_OK)
		die(db, "prepare upsert");
	char key[32], data[256], at[64];
	double t0 = now();
	for (long long i = 0; i < n; i++) {
		if (i % ROWS_PER_TX == 0) {
			exec(db, "BEGIN IMMEDIATE");
			stamp(at, sizeof at);
		}
		int kn = snprintf(key, sizeof key, "%lld", i);
		int dn = snprintf(data, sizeof data, "{\"id\":%lld,\"seq\":%lld,\"connection_id\":\"%s\"}", i, i, conn);
		sqlite3_bind_text(st, 1, conn, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, "events", 6, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, key, kn, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, data, dn, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, run, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, at, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, i + 1);
		if (sqlite3_step(st) != SQLITE_DONE)
			die(db, "upsert");
		sqlite3_reset(st);
		if ((i + 1) % ROWS_PER_TX == 0 || i + 1 == n)
			exec(db, "COMMIT");
	}
	double secs = now() - t0;
	sqlite3_finalize(st);
	sqlite3_stmt *count;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM records", -1, &count, NULL) != SQLITE_OK ||
	    sqlite3_step(count) != SQLITE_ROW)
		die(db, "count");
	long long rows = sqlite3_column_int64(count, 0);
	sqlite3_finalize(count);
	printf("rows %lld seconds %.6f\n", rows, secs);
	/* Leave the WAL as connhost's running host leaves it: no close-time
	   checkpoint before the harness sizes the files. */
	return rows == n ? 0 : 1;
}
