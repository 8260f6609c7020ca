/*
 * The limit for the SQLite backend: the same schema, pragmas and statements as
 * Sources/MCPSessionStorageSQLite (SQLiteSchema.swift, SQLiteRows.swift), run in a tight
 * C loop over libsqlite3 with prepared statements and no JSON work. One transaction per
 * operation, as the Swift backend does.
 *
 * Usage: loop PATH SECONDS   prints "name ops_per_second" lines for
 *        get-session, set-state, append-event, replay-100.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sqlite3 *db;

static void check(int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void exec(const char *sql) { check(sqlite3_exec(db, sql, 0, 0, 0), sql); }

static sqlite3_stmt *prepare(const char *sql) {
    sqlite3_stmt *stmt;
    check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, 0), sql);
    return stmt;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *SESSION = "0193a5b2-7c1d-7e4f-8a9b-0123456789ab";

/* Steps a statement to completion, counting rows and touching each column as a reader would. */
static int drain(sqlite3_stmt *stmt) {
    int rows = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int n = sqlite3_column_count(stmt);
        for (int i = 0; i < n; i++) (void)sqlite3_column_blob(stmt, i), (void)sqlite3_column_bytes(stmt, i);
        rows++;
    }
    check(rc, "step");
    sqlite3_reset(stmt);
    return rows;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: loop PATH SECONDS\n"); return 2; }
    double seconds = atof(argv[2]);
    remove(argv[1]);
    check(sqlite3_open(argv[1], &db), "open");
    exec("PRAGMA journal_mode = WAL");
    exec("PRAGMA synchronous = NORMAL");
    exec("PRAGMA foreign_keys = ON");
    exec("CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, created_at REAL NOT NULL, last_activity REAL NOT NULL,"
         " is_initialized INTEGER NOT NULL, protocol_version TEXT, client_info BLOB, client_capabilities BLOB,"
         " server_capabilities BLOB, metadata BLOB NOT NULL, version INTEGER NOT NULL, state_bytes INTEGER NOT NULL,"
         " last_event_id INTEGER NOT NULL) WITHOUT ROWID;"
         "CREATE INDEX sessions_by_activity ON sessions(last_activity);"
         "CREATE TABLE session_state (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
         " key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (session_id, key)) WITHOUT ROWID;"
         "CREATE TABLE session_events (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
         " id INTEGER NOT NULL, stream TEXT NOT NULL, created_at REAL NOT NULL, type TEXT, data BLOB, retry_ms INTEGER,"
         " PRIMARY KEY (session_id, id)) WITHOUT ROWID;"
         "CREATE INDEX session_events_by_stream ON session_events(session_id, stream, id);");

    sqlite3_stmt *begin = prepare("BEGIN DEFERRED"), *begin_write = prepare("BEGIN IMMEDIATE"), *commit = prepare("COMMIT");
    sqlite3_stmt *select_session = prepare(
        "SELECT id, created_at, last_activity, is_initialized, protocol_version, client_info, client_capabilities,"
        " server_capabilities, metadata, version FROM sessions WHERE id = ?");
    sqlite3_stmt *select_state = prepare("SELECT key, value FROM session_state WHERE session_id = ?");
    sqlite3_stmt *state_size = prepare(
        "SELECT length(CAST(key AS BLOB)) + length(value) FROM session_state WHERE session_id = ? AND key = ?");
    sqlite3_stmt *bump = prepare(
        "UPDATE sessions SET state_bytes = state_bytes + ?, version = version + 1, last_activity = ?"
        " WHERE id = ? RETURNING version, state_bytes");
    sqlite3_stmt *upsert = prepare(
        "INSERT INTO session_state (session_id, key, value) VALUES (?, ?, ?)"
        " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value");
    sqlite3_stmt *next_id = prepare(
        "UPDATE sessions SET last_event_id = last_event_id + 1, last_activity = ? WHERE id = ? RETURNING last_event_id");
    sqlite3_stmt *insert_event = prepare(
        "INSERT INTO session_events (session_id, id, stream, created_at, type, data, retry_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt *trim = prepare("DELETE FROM session_events WHERE session_id = ? AND id <= ?");
    sqlite3_stmt *event_stream = prepare("SELECT stream FROM session_events WHERE session_id = ? AND id = ?");
    sqlite3_stmt *events_after = prepare(
        "SELECT id, stream, created_at, type, data, retry_ms FROM session_events"
        " WHERE session_id = ? AND stream = ? AND id > ? ORDER BY id LIMIT ?");

    /* The fixture the Swift benchmarks build: three state keys, 201 events over streams 1 and 2. */
    char insert_session[512];
    snprintf(insert_session, sizeof insert_session,
             "INSERT INTO sessions VALUES ('%s', 0, 0, 1, '2025-06-18', '{\"name\":\"bench\",\"version\":\"1\"}', NULL, NULL,"
             " '{}', 1, 0, 0)", SESSION);
    exec(insert_session);
    const char *keys[] = {"user", "counter", "prefs"};
    const char *values[] = {"\"ada\"", "41", "{\"lang\":\"en\",\"theme\":\"dark\"}"};
    char payload[160];
    const long keep = 1000;

#define SET_STATE(KEY, VALUE)                                                                   \
    do {                                                                                        \
        drain(begin_write);                                                                     \
        sqlite3_bind_text(state_size, 1, SESSION, -1, SQLITE_STATIC);                           \
        sqlite3_bind_text(state_size, 2, KEY, -1, SQLITE_STATIC);                               \
        int old = sqlite3_step(state_size) == SQLITE_ROW ? sqlite3_column_int(state_size, 0) : 0; \
        sqlite3_reset(state_size);                                                              \
        sqlite3_bind_int(bump, 1, (int)(strlen(KEY) + strlen(VALUE)) - old);                    \
        sqlite3_bind_double(bump, 2, now());                                                    \
        sqlite3_bind_text(bump, 3, SESSION, -1, SQLITE_STATIC);                                 \
        drain(bump);                                                                            \
        sqlite3_bind_text(upsert, 1, SESSION, -1, SQLITE_STATIC);                               \
        sqlite3_bind_text(upsert, 2, KEY, -1, SQLITE_STATIC);                                   \
        sqlite3_bind_blob(upsert, 3, VALUE, (int)strlen(VALUE), SQLITE_STATIC);                 \
        drain(upsert);                                                                          \
        drain(commit);                                                                          \
    } while (0)

#define APPEND(STREAM, INDEX)                                                                   \
    do {                                                                                        \
        drain(begin_write);                                                                     \
        sqlite3_bind_double(next_id, 1, now());                                                 \
        sqlite3_bind_text(next_id, 2, SESSION, -1, SQLITE_STATIC);                              \
        check(sqlite3_step(next_id), "next id");                                                \
        long id = sqlite3_column_int64(next_id, 0);                                             \
        sqlite3_reset(next_id);                                                                 \
        int len = snprintf(payload, sizeof payload,                                             \
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"tick %ld\",\"level\":\"info\"}}", (long)(INDEX)); \
        sqlite3_bind_text(insert_event, 1, SESSION, -1, SQLITE_STATIC);                         \
        sqlite3_bind_int64(insert_event, 2, id);                                                \
        sqlite3_bind_text(insert_event, 3, STREAM, -1, SQLITE_STATIC);                          \
        sqlite3_bind_double(insert_event, 4, now());                                            \
        sqlite3_bind_null(insert_event, 5);                                                     \
        sqlite3_bind_blob(insert_event, 6, payload, len, SQLITE_STATIC);                        \
        sqlite3_bind_null(insert_event, 7);                                                     \
        drain(insert_event);                                                                    \
        if (id > keep) {                                                                        \
            sqlite3_bind_text(trim, 1, SESSION, -1, SQLITE_STATIC);                             \
            sqlite3_bind_int64(trim, 2, id - keep);                                             \
            drain(trim);                                                                        \
        }                                                                                       \
        drain(commit);                                                                          \
    } while (0)

    for (int i = 0; i < 3; i++) SET_STATE(keys[i], values[i]);
    for (long i = 0; i < 201; i++) APPEND(i % 2 ? "2" : "1", i);
    const long cursor = 1;

    double start, elapsed;
    long ops;
#define MEASURE(NAME, BODY)                                                                     \
    ops = 0;                                                                                    \
    start = now();                                                                              \
    do {                                                                                        \
        for (int batch = 0; batch < 100; batch++, ops++) { BODY; }                              \
        elapsed = now() - start;                                                                \
    } while (elapsed < seconds);                                                                \
    printf("%s %.0f\n", NAME, ops / elapsed);                                                   \
    fflush(stdout);

    MEASURE("get-session", {
        drain(begin);
        sqlite3_bind_text(select_session, 1, SESSION, -1, SQLITE_STATIC);
        drain(select_session);
        sqlite3_bind_text(select_state, 1, SESSION, -1, SQLITE_STATIC);
        drain(select_state);
        drain(commit);
    });
    MEASURE("set-state", { SET_STATE("counter", "42"); });
    MEASURE("replay-100", {
        drain(begin);
        sqlite3_bind_text(event_stream, 1, SESSION, -1, SQLITE_STATIC);
        sqlite3_bind_int64(event_stream, 2, cursor);
        check(sqlite3_step(event_stream), "stream");
        char stream[64];
        snprintf(stream, sizeof stream, "%s", (const char *)sqlite3_column_text(event_stream, 0));
        sqlite3_reset(event_stream);
        sqlite3_bind_text(events_after, 1, SESSION, -1, SQLITE_STATIC);
        sqlite3_bind_text(events_after, 2, stream, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(events_after, 3, cursor);
        sqlite3_bind_int64(events_after, 4, -1);
        if (drain(events_after) != 100) { fprintf(stderr, "replay returned the wrong count\n"); return 1; }
        drain(commit);
    });
    MEASURE("append-event", { APPEND("3", ops); });
    sqlite3_close(db);
    return 0;
}
