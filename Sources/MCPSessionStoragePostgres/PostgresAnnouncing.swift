@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// Writes that announce themselves: the same statements, also sending their change's NOTIFY, so
// the notification is emitted if and only if the write commits (a storage built with a
// `ChangeEmitter`). The message text comes from `ChangeMessageText`; the SQL only splices its
// pieces around the number the write learns (a version, an event id).

extension PostgresPreparedStatement {
    /// The placeholder of the `n`-th parameter bound after the statement's own.
    static func extraParameter(_ n: Int) -> String { "$\(bindingDataTypes.count + n)" }
}

/// A write that can send a NOTIFY per written row: `pg_notify(channel, prefix || number || suffix)`.
/// Its announcing form takes three parameters after its own: the channel, the prefix and the suffix.
protocol AnnouncedWrite: PostgresPreparedStatement {
    static var announcingSQL: String { get }
}

extension AnnouncedWrite {
    /// `sql` (one statement without a WITH of its own, returning rows) wrapped to notify once
    /// per row it returns, with `number` (a column of those rows) spliced into the message.
    static func announcing(number: String, returning: String) -> String {
        """
        WITH written AS (\(sql)), notified AS (SELECT count(*) FROM (SELECT pg_notify(\(extraParameter(1)), \
        \(extraParameter(2)) || \(number)::text || \(extraParameter(3))) FROM written) sent) \
        SELECT \(returning) FROM written, notified
        """
    }
}

extension InsertSession: AnnouncedWrite {
    static let announcingSQL = announcing(number: "1", returning: "1")
}

extension UpdateSession: AnnouncedWrite {
    static let announcingSQL = announcing(number: "version", returning: "created_at, version")
}

extension SetState: AnnouncedWrite {
    static let announcingSQL = announcing(number: "version", returning: "version")
}

extension RemoveState: AnnouncedWrite {
    static let announcingSQL = announcing(number: "version", returning: "version")
}

extension DeleteSession: AnnouncedWrite {
    // The message is whole before the write runs: it travels as the prefix, the number is empty.
    static let announcingSQL = announcing(number: "''", returning: "1")
}

extension AppendEvent: AnnouncedWrite {
    // A data-modifying WITH cannot nest inside another, so the NOTIFY joins the same WITH.
    static let announcingSQL = """
        WITH \(steps), notified AS (SELECT count(*) FROM (SELECT pg_notify(\(extraParameter(1)), \
        \(extraParameter(2)) || id::text || \(extraParameter(3))) FROM inserted) sent) \
        SELECT id FROM inserted, notified
        """
}

extension DeleteEvents: AnnouncedWrite {
    // Sent whether or not rows went: receivers drop the events they hold either way.
    static let announcingSQL = """
        WITH \(steps), notified AS (SELECT pg_notify(\(extraParameter(1)), \(extraParameter(2)) || \(extraParameter(3)))) \
        \(result) FROM (SELECT count(*) FROM notified) sent
        """
}

extension ExpireSessions: AnnouncedWrite {
    // Each expired row's message is the prefix followed by its session id.
    static let announcingSQL = """
        WITH \(steps), notified AS (SELECT count(*) FROM (SELECT pg_notify(\(extraParameter(1)), \
        \(extraParameter(2)) || id || \(extraParameter(3))) FROM expired) sent) \
        SELECT id FROM expired, notified
        """
}

/// `Base` with its NOTIFY: the same bindings plus channel, message prefix and suffix.
struct Announcing<Base: AnnouncedWrite>: PostgresPreparedStatement {
    static var name: String { Base.name + "_notify" }
    static var sql: String { Base.announcingSQL }
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

/// A statement that writes several sessions at once (`SetStates`, `AppendEvents`), each row
/// answering with the session's id and a number (the new version, the new event id).
protocol BatchWrite: PostgresPreparedStatement where Row == (SessionID, Int64) {
    /// The statement's CTEs, without `WITH`.
    static var steps: String { get }
    /// The final `SELECT` over the steps.
    static var result: String { get }
    /// A query over the steps with columns `number` and `suffix` per written row: the pieces of
    /// each row's change message after the shared prefix.
    static var numbered: String { get }
}

/// A batch with its changes sent inside the same statement, joined by newlines 16 to a NOTIFY:
/// listeners wake and parse once per 16 changes, and 16 messages of at most about 450 bytes (an
/// event's carries its stream id, up to 256 bytes, and a session id of up to 128) stay under
/// PostgreSQL's 8 000-byte payload limit. (At 32, appends on streams named by long request ids
/// overflowed it, and the whole batch failed.) Two parameters follow the batch's own: the
/// channel and the messages' shared prefix.
struct AnnouncingBatch<Base: BatchWrite>: PostgresPreparedStatement {
    static var name: String { Base.name + "_notify" }
    static var sql: String {
        """
        WITH \(Base.steps), notified AS (SELECT count(*) FROM (SELECT pg_notify(\(Base.extraParameter(1)), string_agg(message, E'\\n')) \
        FROM (SELECT \(Base.extraParameter(2)) || m.number::text || m.suffix AS message, (row_number() OVER ()) / 16 AS chunk \
        FROM (\(Base.numbered)) m) numbered GROUP BY chunk) sent) \(Base.result), notified
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

/// The bus's own NOTIFY, for changes sent after their writes.
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
