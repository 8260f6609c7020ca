import Foundation
import MCPSessionStorage
import PostgresNIO

// The hot statements, prepared once per connection by PostgresNIO (as `pgbench -M prepared`
// does; `scripts/bench` runs the same SQL through pgbench). Each write is one statement, so it
// is atomic on its own and needs no explicit transaction or extra round trip.

/// A JSON column (json, jsonb or text), parsed straight from the wire buffer.
struct JSONColumn: PostgresDecodable {
    let value: JSONValue

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        if type == .jsonb && format == .binary {
            guard buffer.readInteger(as: UInt8.self) == 1 else { throw SessionStorageError.corrupted("unknown jsonb binary version") }
        }
        let view = buffer.readableBytesView
        let parsed = try view.withContiguousStorageIfAvailable { bytes in
            try JSONValue.decode(bytes: bytes)
        } ?? JSONValue.decode(Data(view))
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        value = type == .jsonb ? JSONBEscaping.restored(parsed, from: view) : parsed
    }
}

extension Optional where Wrapped == JSONValue {
    /// JSON text to bind to a `jsonb` parameter, or NULL.
    func text() throws(SessionStorageError) -> String? {
        try map { (value) throws(SessionStorageError) in try JSONBEscaping.text(value) }
    }
}

/// The columns of a session row, in `SelectSession`'s order.
enum SessionColumns {
    static let list = """
        created_at, last_activity, is_initialized, protocol_version, client_info, client_capabilities, \
        server_capabilities, metadata, state, version
        """

    /// Decodes the session columns at the start of `row` (a batch row has the id after them).
    static func decode(_ row: PostgresRow, id: SessionID) throws -> SessionInfo {
        let values = row.makeRandomAccess()
        let context = PostgresDecodingContext.default
        func column<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws -> T { try values[index].decode(T.self, context: context) }
        let (createdAt, lastActivity, isInitialized, protocolVersion) =
            (try column(0, Date.self), try column(1, Date.self), try column(2, Bool.self), try column(3, String?.self))
        let (clientInfo, clientCapabilities, serverCapabilities) =
            (try column(4, JSONColumn?.self), try column(5, JSONColumn?.self), try column(6, JSONColumn?.self))
        let (metadata, state, version) = (try column(7, JSONColumn.self), try column(8, JSONColumn.self), try column(9, Int64.self))
        guard case .object(let metadataObject) = metadata.value, case .object(let stateObject) = state.value else {
            throw SessionStorageError.corrupted("metadata or state of \(id) is not a JSON object")
        }
        return SessionInfo(
            id: id, createdAt: createdAt, lastActivity: lastActivity, isInitialized: isInitialized,
            protocolVersion: protocolVersion, clientInfo: clientInfo?.value, clientCapabilities: clientCapabilities?.value,
            serverCapabilities: serverCapabilities?.value, metadata: metadataObject, state: stateObject, version: version)
    }
}

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
        let text = try row.makeRandomAccess()[10].decode(String.self, context: .default)
        let id: SessionID
        do { id = try SessionID(validating: text) } catch { throw SessionStorageError.corrupted("stored session id \(text.debugDescription) is malformed") }
        return try SessionColumns.decode(row, id: id)
    }
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

/// A whole state dictionary, encoded for the `state`, `state_sizes` and `state_bytes` columns.
struct StateColumns {
    let values: String
    let sizes: String
    let total: Int

    init(_ state: [String: JSONValue], limits: SessionLimits) throws(SessionStorageError) {
        let encoded = try limits.encodeState(state)
        self.values = try JSONBEscaping.text(.object(state))
        self.sizes = try JSONBEscaping.text(.object(encoded.sizes.mapValues { .int(Int64($0)) }))
        self.total = encoded.total
    }
}

struct UpdateSession: PostgresPreparedStatement {
    static let name = "mcp_update_session"
    static let sql = """
        UPDATE mcp_sessions SET last_activity = $2, is_initialized = $3, protocol_version = $4, client_info = $5::jsonb, \
        client_capabilities = $6::jsonb, server_capabilities = $7::jsonb, metadata = $8::jsonb, state = $9::jsonb, \
        state_sizes = $10::jsonb, state_bytes = $11, version = version + 1 \
        WHERE id = $1 AND version = $12 RETURNING created_at, version
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .timestamptz, .bool, .text, .text, .text, .text, .text, .text, .text, .int4, .int8]
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

/// One state write waiting for a batch.
struct StateWrite: Sendable {
    let key: String
    let json: String
    let size: Int
}

/// Several sessions' state writes (one each) in one statement: `SetState` over `unnest`. The
/// rows are locked in id order first, so batches from several instances cannot deadlock.
struct SetStates: BatchWrite {
    static let name = "mcp_set_states"
    static let steps = """
        b AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[]) AS b(id, key, value, size)), \
        locked AS MATERIALIZED (SELECT s.id FROM mcp_sessions s WHERE s.id = ANY($1::text[]) ORDER BY s.id FOR UPDATE), \
        written AS (UPDATE mcp_sessions s SET state = s.state || jsonb_build_object(b.key, b.value::jsonb), \
        state_sizes = s.state_sizes || jsonb_build_object(b.key, b.size), \
        state_bytes = s.state_bytes - coalesce((s.state_sizes ->> b.key)::integer, 0) + b.size, \
        version = s.version + 1, last_activity = $5 \
        FROM b WHERE s.id = b.id AND s.id IN (SELECT id FROM locked) \
        AND s.state_bytes - coalesce((s.state_sizes ->> b.key)::integer, 0) + b.size <= $6 RETURNING s.id, s.version)
        """
    static let result = "SELECT id, version FROM written"
    static let sql = "WITH \(steps) \(result)"
    static func changes(prefix: String) -> String { "SELECT \(prefix) || version::text || '|' || id AS message FROM written" }
    static let bindingDataTypes: [PostgresDataType] = [.textArray, .textArray, .textArray, .int4Array, .timestamptz, .int4]
    typealias Row = (SessionID, Int64)
    let calls: [(id: SessionID, input: StateWrite)]
    let now: Date
    let limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(calls.map(\.id.rawValue))
        bindings.append(calls.map(\.input.key))
        bindings.append(calls.map(\.input.json))
        bindings.append(calls.map { Int32($0.input.size) })
        bindings.append(now)
        bindings.append(Int32(clamping: limit))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (SessionID, Int64) { try SessionRow.idAndNumber(row) }
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

/// Takes the next event id under the session row's lock, inserts the event and trims the
/// oldest past the limit, in one statement. Ids are dense, so the trim is an index range.
struct AppendEvent: PostgresPreparedStatement {
    static let name = "mcp_append_event"
    /// The steps, as CTEs; `sql` selects the new id from them, `notifyingSQL` also notifies.
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

/// One append waiting for a batch.
struct EventWrite: Sendable {
    let stream: StreamID
    let type: String?
    let data: String?
    let retryMilliseconds: Int32?
    /// The tail of its change message (`|<stream bytes>|<stream><session>`), for the NOTIFY.
    let notifySuffix: String
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
    static let sql = "WITH \(steps) \(result)"
    static func changes(prefix: String) -> String {
        "SELECT \(prefix) || i.id::text || b.suffix AS message FROM inserted i JOIN b ON b.session_id = i.session_id"
    }
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
        bindings.append(calls.map(\.input.notifySuffix))
        bindings.append(now)
        bindings.append(Int64(keep))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (SessionID, Int64) { try SessionRow.idAndNumber(row) }
}

/// A statement that writes several sessions at once (`SetStates`, `AppendEvents`), each row
/// answering with the session's id and a number (the new version, the new event id).
protocol BatchWrite: PostgresPreparedStatement where Row == (SessionID, Int64) {
    /// The statement's CTEs, without `WITH`.
    static var steps: String { get }
    /// The final `SELECT` over the steps.
    static var result: String { get }
    /// A query over the steps with one `message` column: each written row's change message,
    /// `prefix` (a parameter) followed by what the row adds.
    static func changes(prefix: String) -> String
}

/// A batch with its changes sent inside the same statement (the attached bus), joined by
/// newlines 16 to a NOTIFY: listeners wake and parse once per 16 changes, and 16 messages of
/// at most about 450 bytes (an event's carries its stream id, up to 256 bytes, and a session id
/// of up to 128) stay under PostgreSQL's 8 000-byte payload limit. (At 32, appends on streams
/// named by long request ids overflowed it, and the whole batch failed.) The channel and the
/// message prefix follow the batch's own parameters.
struct NotifyingBatch<Base: BatchWrite>: PostgresPreparedStatement {
    static var name: String { Base.name + "_notify" }
    static var sql: String {
        let channel = "$\(Base.bindingDataTypes.count + 1)"
        let prefix = "$\(Base.bindingDataTypes.count + 2)"
        return """
            WITH \(Base.steps), notified AS (SELECT count(*) FROM (SELECT pg_notify(\(channel), string_agg(message, E'\\n')) \
            FROM (SELECT message, (row_number() OVER ()) / 16 AS chunk FROM (\(Base.changes(prefix: prefix))) m) numbered \
            GROUP BY chunk) sent) \(Base.result), notified
            """
    }
    static var bindingDataTypes: [PostgresDataType] { Base.bindingDataTypes + [.text, .text] }
    typealias Row = (SessionID, Int64)
    let base: Base
    let channel: String
    let prefix: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = try base.makeBindings()
        bindings.append(channel)
        bindings.append(prefix)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> (SessionID, Int64) { try base.decodeRow(row) }
}

/// Decoding shared by the batch statements.
enum SessionRow {
    /// A session id and a number (a version, an event id).
    static func idAndNumber(_ row: PostgresRow) throws -> (SessionID, Int64) {
        let (id, number) = try row.decode((String, Int64).self)
        do { return (try SessionID(validating: id), number) } catch { throw SessionStorageError.corrupted("stored session id is malformed") }
    }
}

enum EventColumns {
    static let list = "e.id, e.stream, e.created_at, e.type, e.data, e.retry_ms"

    static func decode(_ row: PostgresRow) throws -> SSEEvent {
        let (id, stream, createdAt, type, data, retry) = try row.decode((Int64, String, Date, String?, JSONColumn?, Int32?).self)
        let streamID: StreamID
        do { streamID = try StreamID(validating: stream) } catch { throw SessionStorageError.corrupted("stored stream id is malformed") }
        return SSEEvent(id: id, stream: streamID, timestamp: createdAt, type: type, data: data?.value, retryMilliseconds: retry.map(Int.init))
    }
}

/// Replay: the cursor event names the stream; the join walks that stream's index from the cursor on.
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

// MARK: Writes that announce themselves

/// A write whose statement can also send the change's NOTIFY, so the notification is emitted
/// if and only if the write commits (`PostgresChangeBus(attachedTo:)`). `notifyingSQL` wraps
/// the write in a CTE and calls `pg_notify(channel, prefix || <value from the row> || suffix)`
/// once per written row; the three extra parameters follow the write's own.
protocol NotifyingWrite: PostgresPreparedStatement {
    static var notifyingSQL: String { get }
}

extension NotifyingWrite {
    /// Wraps `sql`, a single statement without a WITH of its own whose parameters run to
    /// `$last`, so it notifies with `column` spliced in.
    static func notifying(_ sql: String, last: Int, column: String, returning: String) -> String {
        """
        WITH written AS (\(sql)), notified AS (SELECT count(*) FROM (SELECT pg_notify($\(last + 1), \
        $\(last + 2) || \(column)::text || $\(last + 3)) FROM written) sent) \
        SELECT \(returning) FROM written, notified
        """
    }
}

extension InsertSession: NotifyingWrite {
    static let notifyingSQL = notifying(sql, last: 11, column: "1", returning: "1")
}

extension UpdateSession: NotifyingWrite {
    static let notifyingSQL = notifying(sql, last: 12, column: "version", returning: "created_at, version")
}

extension SetState: NotifyingWrite {
    static let notifyingSQL = notifying(sql, last: 6, column: "version", returning: "version")
}

extension RemoveState: NotifyingWrite {
    static let notifyingSQL = notifying(sql, last: 3, column: "version", returning: "version")
}

extension AppendEvent: NotifyingWrite {
    // A data-modifying WITH cannot nest inside another, so the NOTIFY joins the same WITH.
    static let notifyingSQL = """
        WITH \(steps), notified AS (SELECT count(*) FROM (SELECT pg_notify($8, $9 || id::text || $10) FROM inserted) sent) \
        SELECT id FROM inserted, notified
        """
}

/// `Base` with its NOTIFY: the same bindings plus channel, payload prefix and suffix.
struct Notifying<Base: NotifyingWrite>: PostgresPreparedStatement {
    static var name: String { Base.name + "_notify" }
    static var sql: String { Base.notifyingSQL }
    static var bindingDataTypes: [PostgresDataType] { Base.bindingDataTypes + [.text, .text, .text] }
    typealias Row = Base.Row
    let base: Base
    let channel: String
    let prefix: String
    let suffix: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = try base.makeBindings()
        bindings.append(channel)
        bindings.append(prefix)
        bindings.append(suffix)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Base.Row { try base.decodeRow(row) }
}

/// The standalone bus's NOTIFY, prepared once per connection like every other statement.
struct Notify: PostgresPreparedStatement {
    static let name = "mcp_notify"
    static let sql = "SELECT pg_notify($1, $2)"
    static let bindingDataTypes: [PostgresDataType] = [.text, .text]
    typealias Row = Void
    let channel: String
    let payload: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(channel)
        bindings.append(payload)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}
