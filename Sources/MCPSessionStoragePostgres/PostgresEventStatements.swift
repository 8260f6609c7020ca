import Foundation
@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// The statements on events. Event ids are handed out under the session row's lock
// (`last_event_id`), so they are dense per session and commit in order; "keep the newest N" is
// then an index range delete.

/// One append waiting for a batch.
struct EventWrite: Sendable {
    let stream: StreamID
    let type: String?
    let data: String?
    let retryMilliseconds: Int32?
    /// The end of its change message, after the event id (see `ChangeMessageText.Template`).
    let messageSuffix: String
}

/// Takes the next event id under the session row's lock, inserts the event and trims the
/// oldest past the limit, in one statement.
struct AppendEvent: PostgresPreparedStatement {
    static let name = "mcp_append_event"
    /// The steps, as CTEs; `sql` selects the new id from them, and the announcing form also notifies.
    static let steps = """
        next AS (UPDATE mcp_sessions SET last_event_id = last_event_id + 1, last_activity = $2 \
        WHERE id = $1 RETURNING last_event_id), \
        inserted AS (INSERT INTO mcp_session_events (session_id, id, stream, created_at, type, data, retry_ms) \
        SELECT $1, last_event_id, $3, $2, $4, $5, $6 FROM next RETURNING id), \
        trimmed AS (DELETE FROM mcp_session_events WHERE session_id = $1 AND id <= (SELECT id FROM inserted) - $7)
        """
    static let sql = "WITH \(steps) SELECT id FROM inserted"
    static let bindingDataTypes: [PostgresDataType] = [.text, .timestamptz, .text, .text, .text, .int4, .int8]
    typealias Row = Int64
    let id: SessionID
    let now: Date
    let event: EventWrite
    let keep: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(id.rawValue)
        bindings.append(now)
        bindings.append(event.stream.rawValue)
        bindings.append(event.type)
        bindings.append(event.data)
        bindings.append(event.retryMilliseconds)
        bindings.append(Int64(keep))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

/// Several sessions' appends (one each) in one statement: `AppendEvent` over `unnest`, the
/// session rows locked in id order first so batches from several instances cannot deadlock.
struct AppendEvents: BatchWrite {
    static let name = "mcp_append_events"
    // PostgresNIO's arrays hold no NULLs, so each optional column travels with a presence flag.
    static let steps = """
        b AS (SELECT session_id, stream, CASE WHEN has_type THEN type END AS type, CASE WHEN has_data THEN data END AS data, \
        CASE WHEN has_retry THEN retry_ms END AS retry_ms, suffix \
        FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::bool[], $7::int4[], $8::bool[], $9::text[]) \
        AS u(session_id, stream, type, has_type, data, has_data, retry_ms, has_retry, suffix)), \
        locked AS MATERIALIZED (SELECT s.id FROM mcp_sessions s WHERE s.id = ANY($1::text[]) ORDER BY s.id FOR UPDATE), \
        next AS (UPDATE mcp_sessions s SET last_event_id = s.last_event_id + 1, last_activity = $10 \
        FROM b WHERE s.id = b.session_id AND s.id IN (SELECT id FROM locked) RETURNING s.id, s.last_event_id), \
        inserted AS (INSERT INTO mcp_session_events (session_id, id, stream, created_at, type, data, retry_ms) \
        SELECT next.id, next.last_event_id, b.stream, $10, b.type, b.data, b.retry_ms FROM next JOIN b ON b.session_id = next.id \
        RETURNING session_id, id), \
        trimmed AS (DELETE FROM mcp_session_events e USING inserted i WHERE e.session_id = i.session_id AND e.id <= i.id - $11)
        """
    static let result = "SELECT session_id, id FROM inserted"
    static let numbered = "SELECT i.id AS number, b.suffix FROM inserted i JOIN b ON b.session_id = i.session_id"
    static let sql = "WITH \(steps) \(result)"
    static let bindingDataTypes: [PostgresDataType] = [
        .textArray, .textArray, .textArray, .boolArray, .textArray, .boolArray, .int4Array, .boolArray, .textArray, .timestamptz, .int8,
    ]
    typealias Row = (SessionID, Int64)
    let calls: [(id: SessionID, input: EventWrite)]
    let now: Date
    let keep: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(calls.map(\.id.rawValue))
        bindings.append(calls.map(\.input.stream.rawValue))
        bindings.append(calls.map { $0.input.type ?? "" })
        bindings.append(calls.map { $0.input.type != nil })
        bindings.append(calls.map { $0.input.data ?? "" })
        bindings.append(calls.map { $0.input.data != nil })
        bindings.append(calls.map { $0.input.retryMilliseconds ?? 0 })
        bindings.append(calls.map { $0.input.retryMilliseconds != nil })
        bindings.append(calls.map(\.input.messageSuffix))
        bindings.append(now)
        bindings.append(Int64(keep))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (SessionID, Int64) { try SessionColumns.idAndNumber(row) }
}

/// Replay from any position: the stream's index from the position on.
struct StreamEventsAfter: PostgresPreparedStatement {
    static let name = "mcp_stream_events_after"
    static let sql = """
        SELECT \(EventColumns.list) FROM mcp_session_events e \
        WHERE e.session_id = $1 AND e.stream = $2 AND e.id > $3 ORDER BY e.id LIMIT $4
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .int8, .int8]
    typealias Row = SSEEvent
    let id: SessionID
    let stream: StreamID
    let after: Int64
    let limit: Int?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(id.rawValue)
        bindings.append(stream.rawValue)
        bindings.append(after)
        bindings.append(limit.map { Int64($0) })  // NULL: no limit
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SSEEvent { try EventColumns.decode(row) }
}

/// Replay after a cursor event: the cursor names the stream; the join walks that stream's index from it on.
struct EventsAfter: PostgresPreparedStatement {
    static let name = "mcp_events_after"
    static let sql = """
        SELECT \(EventColumns.list) FROM mcp_session_events c JOIN mcp_session_events e \
        ON e.session_id = c.session_id AND e.stream = c.stream AND e.id > c.id \
        WHERE c.session_id = $1 AND c.id = $2 ORDER BY e.id LIMIT $3
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8, .int8]
    typealias Row = SSEEvent
    let id: SessionID
    let cursor: Int64
    let limit: Int?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(id.rawValue)
        bindings.append(cursor)
        bindings.append(limit.map { Int64($0) })  // NULL: no limit
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SSEEvent { try EventColumns.decode(row) }
}

struct SelectEvent: PostgresPreparedStatement {
    static let name = "mcp_select_event"
    static let sql = "SELECT \(EventColumns.list) FROM mcp_session_events e WHERE e.session_id = $1 AND e.id = $2"
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8]
    typealias Row = SSEEvent
    let id: SessionID
    let eventID: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(id.rawValue)
        bindings.append(eventID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SSEEvent { try EventColumns.decode(row) }
}

struct RecentEvents: PostgresPreparedStatement {
    static let name = "mcp_recent_events"
    static let sql = "SELECT \(EventColumns.list) FROM mcp_session_events e WHERE e.session_id = $1 ORDER BY e.id DESC LIMIT $2"
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8]
    typealias Row = SSEEvent
    let id: SessionID
    let limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(id.rawValue)
        bindings.append(Int64(limit))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> SSEEvent { try EventColumns.decode(row) }
}

/// Deletes a session's events below an id; answers how many went and whether the session exists.
struct DeleteEvents: PostgresPreparedStatement {
    static let name = "mcp_delete_events"
    static let steps = "deleted AS (DELETE FROM mcp_session_events WHERE session_id = $1 AND id < $2 RETURNING 1)"
    static let result = "SELECT (SELECT count(*) FROM deleted), EXISTS (SELECT 1 FROM mcp_sessions WHERE id = $1)"
    static let sql = "WITH \(steps) \(result)"
    static let bindingDataTypes: [PostgresDataType] = [.text, .int8]
    typealias Row = (Int64, Bool)
    let id: SessionID
    let before: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(id.rawValue)
        bindings.append(before)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (Int64, Bool) { try row.decode((Int64, Bool).self) }
}
