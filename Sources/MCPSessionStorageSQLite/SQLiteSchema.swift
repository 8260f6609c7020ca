import GRDB
@_spi(Backend) import MCPSessionStorage

/// The database schema, as GRDB migrations: each one runs once, in order, recorded in
/// `grdb_migrations`. Add a new migration for every change; never edit a released one.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Times are Unix seconds as REAL (microsecond precision). `version` is raised by
            // every write; `state_bytes` is the running total the per-session limit checks;
            // `last_event_id` hands out event ids under the write lock.
            try db.execute(
                sql: """
                    CREATE TABLE sessions (
                        id TEXT PRIMARY KEY NOT NULL,
                        created_at REAL NOT NULL,
                        last_activity REAL NOT NULL,
                        is_initialized INTEGER NOT NULL,
                        protocol_version TEXT,
                        client_info BLOB,
                        client_capabilities BLOB,
                        server_capabilities BLOB,
                        metadata BLOB NOT NULL,
                        version INTEGER NOT NULL,
                        state_bytes INTEGER NOT NULL,
                        last_event_id INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX sessions_by_activity ON sessions(last_activity);

                    CREATE TABLE session_state (
                        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                        key TEXT NOT NULL,
                        value BLOB NOT NULL,
                        PRIMARY KEY (session_id, key)
                    ) WITHOUT ROWID;

                    CREATE TABLE session_events (
                        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                        id INTEGER NOT NULL,
                        stream TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        type TEXT,
                        data BLOB,
                        retry_ms INTEGER,
                        PRIMARY KEY (session_id, id)
                    ) WITHOUT ROWID;
                    -- Serves replay: the events of one stream after a cursor, without scanning the
                    -- session's other streams.
                    CREATE INDEX session_events_by_stream ON session_events(session_id, stream, id);
                    """)
        }
        migrator.registerMigration("v2: leases") { db in
            // Who holds a session's named leases (a running call, a task), swapped atomically.
            try db.execute(
                sql: """
                    CREATE TABLE session_leases (
                        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                        name TEXT NOT NULL,
                        holder TEXT NOT NULL,
                        generation INTEGER NOT NULL,
                        PRIMARY KEY (session_id, name)
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// Brings the database to the current schema, or refuses a file written by a newer release.
    static func migrate(_ writer: some DatabaseWriter) throws {
        let migrator = migrator
        if try writer.read({ try migrator.hasBeenSuperseded($0) }) {
            throw SessionStorageError(
                .corrupted, "the database was written by a newer schema than this release knows; upgrade swift-mcp-session-storage")
        }
        try migrator.migrate(writer)
    }
}
