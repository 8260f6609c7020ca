import Logging
@_spi(Backend) import MCPSessionStorage
import PostgresNIO

/// The tables, as numbered migrations recorded in `mcp_session_schema`.
///
/// Every instance runs `migrate` before its first call; a transaction-scoped advisory lock makes
/// instances that start together take turns, and the version table makes the later ones no-ops.
/// A DBA who owns the schema can run ``sql`` by hand and set ``PostgresSessionStorage/Configuration/migrations`` to `.skip`.
public enum PostgresSchema {
    /// The migrations, oldest first, each a list of statements (the extended protocol runs
    /// one statement per query). Append; never edit a released one.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE mcp_sessions (
                id text PRIMARY KEY,
                created_at timestamptz NOT NULL,
                last_activity timestamptz NOT NULL,
                is_initialized boolean NOT NULL,
                protocol_version text,
                client_info jsonb,
                client_capabilities jsonb,
                server_capabilities jsonb,
                metadata jsonb NOT NULL,
                state jsonb NOT NULL,
                -- The bytes each state key counts against the per-session limit, and their sum.
                state_sizes jsonb NOT NULL,
                state_bytes integer NOT NULL,
                version bigint NOT NULL,
                -- Event ids are handed out under this row's lock, so they commit in order.
                last_event_id bigint NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX mcp_sessions_by_activity ON mcp_sessions (last_activity)",
            """
            CREATE TABLE mcp_session_events (
                session_id text NOT NULL REFERENCES mcp_sessions (id) ON DELETE CASCADE,
                id bigint NOT NULL,
                stream text NOT NULL,
                created_at timestamptz NOT NULL,
                type text,
                data text,
                retry_ms integer,
                PRIMARY KEY (session_id, id)
            )
            """,
            // Serves replay: one stream's events after a cursor, without reading the other streams.
            "CREATE INDEX mcp_session_events_by_stream ON mcp_session_events (session_id, stream, id)",
        ],
        [
            // Who holds a session's named leases (a running call, a task), swapped atomically.
            """
            CREATE TABLE mcp_session_leases (
                session_id text NOT NULL REFERENCES mcp_sessions (id) ON DELETE CASCADE,
                name text NOT NULL,
                holder text NOT NULL,
                generation bigint NOT NULL,
                PRIMARY KEY (session_id, name)
            )
            """
        ],
    ]

    /// Every migration, for a DBA to run by hand in the target schema.
    public static var sql: String {
        """
        CREATE TABLE IF NOT EXISTS mcp_session_schema (version integer NOT NULL);
        \(migrations.joined().map { $0 + ";" }.joined(separator: "\n"))
        INSERT INTO mcp_session_schema VALUES (\(migrations.count));
        """
    }

    static func checkIdentifier(_ name: String) throws(SessionStorageError) {
        let valid =
            !name.isEmpty && name.utf8.count <= 63
            && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            && !(name.utf8.first! >= 48 && name.utf8.first! <= 57)
        guard valid else {
            throw SessionStorageError(
                .invalidInput, "schema name must be 1–63 lowercase letters, digits or '_', not starting with a digit: \(name.debugDescription)")
        }
    }

    /// Brings `schema` up to date; safe to run from many instances at once.
    static func migrate(_ client: PostgresClient, schema: String, logger: Logger) async throws {
        try checkIdentifier(schema)
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\("mcp-session-storage:" + schema)))", logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(schema).mcp_session_schema (version integer NOT NULL)"), logger: logger)
            let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT max(version) FROM \(schema).mcp_session_schema"), logger: logger)
            var current = 0
            for try await row in rows { current = try row.decode(Int?.self) ?? 0 }
            guard current <= migrations.count else {
                throw SessionStorageError(
                    .corrupted,
                    "schema \(schema) is at version \(current), newer than this release knows (\(migrations.count)); upgrade swift-mcp-session-storage"
                )
            }
            guard current < migrations.count else { return }
            try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(schema)"), logger: logger)
            for statement in migrations[current...].joined() {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM mcp_session_schema"), logger: logger)
            try await connection.query("INSERT INTO mcp_session_schema (version) VALUES (\(migrations.count))", logger: logger)
            logger.info("migrated PostgreSQL session schema", metadata: ["schema": "\(schema)", "version": "\(migrations.count)"])
        }
    }
}
