import Foundation
import GRDB
@_spi(Backend) import MCPSessionStorage

/// Every statement the SQLite backend runs, in one place (and the ones `Benchmarks/sqlite-c`
/// mirrors, so the C limit runs the very same SQL).
enum SQL {
    static let sessionColumns = """
        id, created_at, last_activity, is_initialized, protocol_version, client_info, \
        client_capabilities, server_capabilities, metadata, version
        """
    static let sessionExists = "SELECT 1 FROM sessions WHERE id = ?"
    static let insertSession = """
        INSERT INTO sessions (\(sessionColumns), state_bytes, last_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
        """
    static let selectSession = "SELECT \(sessionColumns) FROM sessions WHERE id = ?"
    static let selectState = "SELECT key, value FROM session_state WHERE session_id = ?"
    static let updateSession = """
        UPDATE sessions SET last_activity = ?, is_initialized = ?, protocol_version = ?, client_info = ?, \
        client_capabilities = ?, server_capabilities = ?, metadata = ?, version = ?, state_bytes = ? \
        WHERE id = ? AND version = ? RETURNING created_at
        """
    static let selectVersion = "SELECT version FROM sessions WHERE id = ?"
    static let deleteAllState = "DELETE FROM session_state WHERE session_id = ?"
    static let selectActivity = "SELECT last_activity FROM sessions WHERE id = ?"
    static let touchSession = "UPDATE sessions SET last_activity = ? WHERE id = ? AND last_activity < ?"
    static let deleteSession = "DELETE FROM sessions WHERE id = ?"
    /// A page of ids after a cursor, in the primary key's (binary) order.
    static let listSessions = "SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT ?"
    static let selectStateValue = "SELECT value FROM session_state WHERE session_id = ? AND key = ?"
    static let selectStateSize = "SELECT length(CAST(key AS BLOB)) + length(value) FROM session_state WHERE session_id = ? AND key = ?"
    static let bumpForState = """
        UPDATE sessions SET state_bytes = state_bytes + ?, version = version + 1, last_activity = ? \
        WHERE id = ? RETURNING version, state_bytes
        """
    static let upsertState = """
        INSERT INTO session_state (session_id, key, value) VALUES (?, ?, ?) \
        ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value
        """
    static let deleteStateKey = "DELETE FROM session_state WHERE session_id = ? AND key = ?"
    static let nextEventID = "UPDATE sessions SET last_event_id = last_event_id + 1, last_activity = ? WHERE id = ? RETURNING last_event_id"
    static let insertEvent = "INSERT INTO session_events (session_id, id, stream, created_at, type, data, retry_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
    static let trimEvents = "DELETE FROM session_events WHERE session_id = ? AND id <= ?"
    static let eventColumns = "id, stream, created_at, type, data, retry_ms"
    static let selectEventStream = "SELECT stream FROM session_events WHERE session_id = ? AND id = ?"
    static let selectEventsAfter = "SELECT \(eventColumns) FROM session_events WHERE session_id = ? AND stream = ? AND id > ? ORDER BY id LIMIT ?"
    static let selectEvent = "SELECT \(eventColumns) FROM session_events WHERE session_id = ? AND id = ?"
    static let selectRecentEvents = "SELECT \(eventColumns) FROM session_events WHERE session_id = ? ORDER BY id DESC LIMIT ?"
    static let deleteEventsBefore = "DELETE FROM session_events WHERE session_id = ? AND id < ?"
    static let expireSessions = "DELETE FROM sessions WHERE last_activity < ? RETURNING id"
    static let selectLease = "SELECT holder, generation FROM session_leases WHERE session_id = ? AND name = ?"
    static let deleteLease = "DELETE FROM session_leases WHERE session_id = ? AND name = ?"
    static let upsertLease = """
        INSERT INTO session_leases (session_id, name, holder, generation) VALUES (?, ?, ?, ?)         ON CONFLICT (session_id, name) DO UPDATE SET holder = excluded.holder, generation = excluded.generation
        """
}

/// A session's columns, encoded for binding.
struct SessionRow {
    let id: String
    let createdAt: Double
    let lastActivity: Double
    let isInitialized: Bool
    let protocolVersion: String?
    let clientInfo: Data?
    let clientCapabilities: Data?
    let serverCapabilities: Data?
    let metadata: Data
    let version: Int64

    init(_ session: SessionInfo) throws(SessionStorageError) {
        id = session.id.rawValue
        createdAt = session.createdAt.timeIntervalSince1970
        lastActivity = session.lastActivity.timeIntervalSince1970
        isInitialized = session.isInitialized
        protocolVersion = session.protocolVersion
        clientInfo = try session.clientInfo?.encoded()
        clientCapabilities = try session.clientCapabilities?.encoded()
        serverCapabilities = try session.serverCapabilities?.encoded()
        metadata = try JSONValue.object(session.metadata).encoded()
        version = session.version
    }

    func arguments(stateBytes: Int) -> StatementArguments {
        [
            id, createdAt, lastActivity, isInitialized, protocolVersion, clientInfo, clientCapabilities, serverCapabilities, metadata, version,
            stateBytes,
        ]
    }

    func updateArguments(stateBytes: Int, expected: Int64) -> StatementArguments {
        [
            lastActivity, isInitialized, protocolVersion, clientInfo, clientCapabilities, serverCapabilities, metadata, version, stateBytes, id,
            expected,
        ]
    }

    /// Decodes a `SQL.selectSession` row; `state` is the session's state by key.
    /// The row was selected by `id`, so the id column is not parsed again.
    static func decode(_ row: SQLiteReader.Row, id: SessionID, state: [String: JSONValue]) throws -> SessionInfo {
        guard case .object(let metadata) = try row.json(8, "metadata of \(id)") else {
            throw SessionStorageError.corrupted("metadata of \(id) is not a JSON object")
        }
        return SessionInfo(
            id: id,
            createdAt: Date(timeIntervalSince1970: row.double(1)),
            lastActivity: Date(timeIntervalSince1970: row.double(2)),
            isInitialized: row.integer(3) != 0,
            protocolVersion: row.text(4),
            clientInfo: try row.json(5, "clientInfo of \(id)"),
            clientCapabilities: try row.json(6, "client capabilities of \(id)"),
            serverCapabilities: try row.json(7, "server capabilities of \(id)"),
            metadata: metadata,
            state: state,
            version: row.integer(9))
    }
}

enum EventRow {
    /// Decodes a row of `SQL.eventColumns`.
    static func decode(_ row: SQLiteReader.Row) throws -> SSEEvent {
        let streamText = row.text(1) ?? ""
        let stream: StreamID
        do { stream = try StreamID(validating: streamText) } catch { throw SessionStorageError.corrupted("stored stream id is malformed") }
        return SSEEvent(
            id: row.integer(0),
            stream: stream,
            timestamp: Date(timeIntervalSince1970: row.double(2)),
            type: row.text(3),
            encodedData: try row.jsonText(4, "event \(row.integer(0))"),
            retryMilliseconds: row.isNull(5) ? nil : Int(row.integer(5)))
    }
}
