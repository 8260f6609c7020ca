import Foundation
@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// The statements on a session's state. The state lives in the session row (`state`, with each
// key's size in `state_sizes` and their sum in `state_bytes`), so setting a key checks the
// limit and raises the version in the same UPDATE.

struct SelectStateValue: PostgresPreparedStatement {
    static let name = "mcp_select_state_value"
    static let sql = "SELECT state -> $2 FROM mcp_sessions WHERE id = $1"
    static let bindingDataTypes: [PostgresDataType] = [.text, .text]
    typealias Row = JSONColumn?
    let id: SessionID
    let key: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(id.rawValue)
        bindings.append(key)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> JSONColumn? { try row.decode(JSONColumn?.self) }
}

/// One state write waiting for a batch.
struct StateWrite: Sendable {
    let key: String
    let json: String
    let size: Int
    /// The end of its change message, after the version (see `ChangeMessageText.Template`).
    let messageSuffix: String
}

/// Sets one key in one statement: the value, its size, the running total (checked against the
/// limit in the WHERE clause), the version and the activity time change together or not at all.
struct SetState: PostgresPreparedStatement {
    static let name = "mcp_set_state"
    static let sql = """
        UPDATE mcp_sessions SET state = state || jsonb_build_object($2::text, $3::jsonb), \
        state_sizes = state_sizes || jsonb_build_object($2::text, $4::integer), \
        state_bytes = state_bytes - coalesce((state_sizes ->> $2)::integer, 0) + $4, \
        version = version + 1, last_activity = $5 \
        WHERE id = $1 AND state_bytes - coalesce((state_sizes ->> $2)::integer, 0) + $4 <= $6 RETURNING version
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .int4, .timestamptz, .int4]
    typealias Row = Int64
    let id: SessionID
    let write: StateWrite
    let now: Date
    let limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(id.rawValue)
        bindings.append(write.key)
        bindings.append(write.json)
        bindings.append(Int32(write.size))
        bindings.append(now)
        bindings.append(Int32(clamping: limit))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

/// Several sessions' state writes (one each) in one statement: `SetState` over `unnest`. The
/// rows are locked in id order first, so batches from several instances cannot deadlock.
struct SetStates: BatchWrite {
    static let name = "mcp_set_states"
    static let steps = """
        b AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $7::text[]) AS b(id, key, value, size, suffix)), \
        locked AS MATERIALIZED (SELECT s.id FROM mcp_sessions s WHERE s.id = ANY($1::text[]) ORDER BY s.id FOR UPDATE), \
        written AS (UPDATE mcp_sessions s SET state = s.state || jsonb_build_object(b.key, b.value::jsonb), \
        state_sizes = s.state_sizes || jsonb_build_object(b.key, b.size), \
        state_bytes = s.state_bytes - coalesce((s.state_sizes ->> b.key)::integer, 0) + b.size, \
        version = s.version + 1, last_activity = $5 \
        FROM b WHERE s.id = b.id AND s.id IN (SELECT id FROM locked) \
        AND s.state_bytes - coalesce((s.state_sizes ->> b.key)::integer, 0) + b.size <= $6 RETURNING s.id, s.version, b.suffix)
        """
    static let result = "SELECT id, version FROM written"
    static let numbered = "SELECT version AS number, suffix FROM written"
    static let sql = "WITH \(steps) \(result)"
    static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray, .textArray, .int4Array, .timestamptz, .int4, .textArray]
    typealias Row = (SessionID, Int64)
    let calls: [(id: SessionID, input: StateWrite)]
    let now: Date
    let limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(calls.map(\.id.rawValue))
        bindings.append(calls.map(\.input.key))
        bindings.append(calls.map(\.input.json))
        bindings.append(calls.map { Int32($0.input.size) })
        bindings.append(now)
        bindings.append(Int32(clamping: limit))
        bindings.append(calls.map(\.input.messageSuffix))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (SessionID, Int64) { try SessionColumns.idAndNumber(row) }
}

struct RemoveState: PostgresPreparedStatement {
    static let name = "mcp_remove_state"
    static let sql = """
        UPDATE mcp_sessions SET state = state - $2, state_sizes = state_sizes - $2, \
        state_bytes = state_bytes - coalesce((state_sizes ->> $2)::integer, 0), \
        version = version + 1, last_activity = $3 WHERE id = $1 RETURNING version
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .timestamptz]
    typealias Row = Int64
    let id: SessionID
    let key: String
    let now: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(id.rawValue)
        bindings.append(key)
        bindings.append(now)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}
