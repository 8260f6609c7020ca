import Foundation
@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// The statements on session rows, prepared once per connection by PostgresNIO (as
// `pgbench -M prepared` does). Each write is one statement: atomic on its own, with no
// transaction round trips.

struct SelectSession: PostgresPreparedStatement {
    static let name = "mcp_select_session"
    static let sql = "SELECT \(SessionColumns.list) FROM mcp_sessions WHERE id = $1"
    static let bindingDataTypes: [PostgresDataType] = [.text]
    typealias Row = SessionInfo
    let id: SessionID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id.rawValue)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SessionInfo { try SessionColumns.decode(row, id: id) }
}

/// Several sessions in one round trip (`Batcher`); the id comes last to tell rows apart.
struct SelectSessions: PostgresPreparedStatement {
    static let name = "mcp_select_sessions"
    static let sql = "SELECT \(SessionColumns.list), id FROM mcp_sessions WHERE id = ANY($1)"
    static let bindingDataTypes: [PostgresDataType] = [.textArray]
    typealias Row = SessionInfo
    let ids: [SessionID]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(ids.map(\.rawValue))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SessionInfo {
        try SessionColumns.decode(row, id: try SessionColumns.id(try row.makeRandomAccess()[10].decode(String.self, context: .default)))
    }
}

/// The versions of several sessions in one round trip (`Batcher`); one id is a batch of one.
struct SelectVersions: PostgresPreparedStatement {
    static let name = "mcp_select_versions"
    static let sql = "SELECT id, version FROM mcp_sessions WHERE id = ANY($1)"
    static let bindingDataTypes: [PostgresDataType] = [.textArray]
    typealias Row = (SessionID, Int64)
    let ids: [SessionID]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(ids.map(\.rawValue))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (SessionID, Int64) { try SessionColumns.idAndNumber(row) }
}

struct SessionExists: PostgresPreparedStatement {
    static let name = "mcp_session_exists"
    static let sql = "SELECT 1 FROM mcp_sessions WHERE id = $1"
    static let bindingDataTypes: [PostgresDataType] = [.text]
    typealias Row = Void
    let id: SessionID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id.rawValue)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

struct InsertSession: PostgresPreparedStatement {
    static let name = "mcp_insert_session"
    static let sql = """
        INSERT INTO mcp_sessions (id, created_at, last_activity, is_initialized, protocol_version, client_info, \
        client_capabilities, server_capabilities, metadata, state, state_sizes, state_bytes, version) \
        VALUES ($1, $2, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11, 1) \
        ON CONFLICT (id) DO NOTHING RETURNING 1
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .timestamptz, .bool, .text, .text, .text, .text, .text, .text, .text, .int4]
    typealias Row = Int32
    let session: SessionInfo
    let state: StateColumns

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(session.id.rawValue)
        bindings.append(session.createdAt)
        bindings.append(session.isInitialized)
        bindings.append(session.protocolVersion)
        bindings.append(try session.clientInfo.text())
        bindings.append(try session.clientCapabilities.text())
        bindings.append(try session.serverCapabilities.text())
        bindings.append(try JSONBEscaping.text(.object(session.metadata)))
        bindings.append(state.values)
        bindings.append(state.sizes)
        bindings.append(Int32(state.total))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 { try row.decode(Int32.self) }
}

struct UpdateSession: PostgresPreparedStatement {
    static let name = "mcp_update_session"
    static let sql = """
        UPDATE mcp_sessions SET last_activity = $2, is_initialized = $3, protocol_version = $4, client_info = $5::jsonb, \
        client_capabilities = $6::jsonb, server_capabilities = $7::jsonb, metadata = $8::jsonb, state = $9::jsonb, \
        state_sizes = $10::jsonb, state_bytes = $11, version = version + 1 \
        WHERE id = $1 AND version = $12 RETURNING created_at, version
        """
    static let bindingDataTypes: [PostgresDataType] = InsertSession.bindingDataTypes + [.int8]
    typealias Row = Date
    let insert: InsertSession  // the same columns, bound the same way
    let expectedVersion: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = try insert.makeBindings()
        bindings.append(expectedVersion)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Date { try row.decode((Date, Int64).self).0 }
}

/// Writes the activity time only when the stored one is old; the outer SELECT tells a missing
/// session apart, in the same round trip.
struct TouchSession: PostgresPreparedStatement {
    static let name = "mcp_touch_session"
    static let sql = """
        WITH touched AS (UPDATE mcp_sessions SET last_activity = $2 WHERE id = $1 AND last_activity < $3 RETURNING 1) \
        SELECT EXISTS (SELECT 1 FROM mcp_sessions WHERE id = $1)
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .timestamptz, .timestamptz]
    typealias Row = Bool
    let id: SessionID
    let now: Date
    let olderThan: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(id.rawValue)
        bindings.append(now)
        bindings.append(olderThan)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Bool { try row.decode(Bool.self) }
}

struct DeleteSession: PostgresPreparedStatement {
    static let name = "mcp_delete_session"
    static let sql = "DELETE FROM mcp_sessions WHERE id = $1 RETURNING 1"
    static let bindingDataTypes: [PostgresDataType] = [.text]
    typealias Row = Int32
    let id: SessionID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id.rawValue)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 { try row.decode(Int32.self) }
}

/// One page of ids: the primary key's index, from the cursor on.
struct ListSessions: PostgresPreparedStatement {
    static let name = "mcp_list_sessions"
    static let sql = "SELECT id FROM mcp_sessions WHERE id > $1 ORDER BY id LIMIT $2"
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8]
    typealias Row = SessionID
    let cursor: SessionID?
    let limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(cursor?.rawValue ?? "")  // every id sorts after the empty string
        bindings.append(Int64(max(0, limit)))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SessionID { try SessionColumns.id(try row.decode(String.self)) }
}

/// Deletes the sessions idle since before the cutoff, locking their rows in id order, like a
/// batch's, so an expiry pass and a batch of writes never wait on each other in a cycle.
struct ExpireSessions: PostgresPreparedStatement {
    static let name = "mcp_expire_sessions"
    static let steps = """
        expired AS (DELETE FROM mcp_sessions WHERE id IN \
        (SELECT id FROM mcp_sessions WHERE last_activity < $1 ORDER BY id FOR UPDATE) RETURNING id)
        """
    static let sql = "WITH \(steps) SELECT id FROM expired"
    static let bindingDataTypes: [PostgresDataType] = [.timestamptz]
    typealias Row = String
    let cutoff: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(cutoff)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
}

struct CountRows: PostgresPreparedStatement {
    enum Table: String {
        case sessions = "mcp_sessions"
        case events = "mcp_session_events"
    }
    static let name = "mcp_count_rows"
    // One statement for both tables: the planner picks each branch's own plan.
    static let sql = """
        SELECT CASE $1 WHEN 'mcp_sessions' THEN (SELECT count(*) FROM mcp_sessions) \
        ELSE (SELECT count(*) FROM mcp_session_events) END
        """
    static let bindingDataTypes: [PostgresDataType] = [.text]
    typealias Row = Int64
    let table: Table

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(table.rawValue)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}
