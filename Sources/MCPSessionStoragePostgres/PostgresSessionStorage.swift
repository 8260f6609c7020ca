import Foundation
import Logging
import MCPSessionStorage
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Sessions in PostgreSQL: for several server instances sharing one database.
///
/// The storage is a `Service`: run it in your `ServiceGroup` (it runs its PostgresNIO client).
/// Calls made before the client runs wait for it; the first call creates or migrates the tables.
///
/// ```swift
/// let storage = try PostgresSessionStorage(configuration: try .init(url: "postgres://mcp:secret@db/mcp"), logger: logger)
/// let group = ServiceGroup(services: [storage, server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Every write is one SQL statement, so it is atomic without an explicit transaction, and two
/// instances writing different keys of one session never lose each other's keys. When the
/// database is down, calls fail with `unavailable` within ``Configuration/operationTimeout``,
/// and work again by themselves once it is back.
public final class PostgresSessionStorage: SessionStorage, Service {
    /// The configuration the storage was made with.
    public let configuration: Configuration
    /// The PostgresNIO client, for running your own queries on the same pool.
    public let client: PostgresClient
    private let logger: Logger
    private let migrated = Atomic<Bool>(false)
    private let migration = Mutex<Task<Void, any Error>?>(nil)
    private let watchdog = DeadlineWatchdog()
    private let emitter = Mutex<ChangeEmitter?>(nil)
    private let sessionReads: Batcher<Void, SessionInfo>
    private let stateWrites: Batcher<StateWrite, Int64>
    private let eventWrites: Batcher<EventWrite, Int64>

    /// Makes every write send its change through `emitter` (a `PostgresChangeBus` attached to
    /// this storage): inside its own statement when the emitter says so, otherwise queued once
    /// it committed.
    func emitChanges(through emitter: ChangeEmitter) {
        self.emitter.withLock { $0 = emitter }
    }

    /// Makes the storage and its client. Nothing connects until ``run()`` runs.
    /// - Throws: `invalidInput` for a malformed schema name.
    public init(configuration: Configuration, logger: Logger = Logger(label: "mcp.session.postgres")) throws(SessionStorageError) {
        // State sizes travel as int4 (the `state_bytes` column): limits past it would trap there.
        let limits = configuration.limits
        let half = Int(Int32.max / 2)  // a key and a value together stay within int4
        guard limits.maxStateBytesPerSession <= Int32.max, limits.maxStateValueBytes <= half, limits.maxKeyBytes <= half else {
            throw SessionStorageError(.invalidInput, "PostgreSQL stores state sizes as integer: state limits must stay below 2 GiB")
        }
        self.configuration = configuration
        self.logger = logger
        self.client = PostgresClient(configuration: try configuration.clientConfiguration(), backgroundLogger: logger)
        // One batch of session reads in flight: readers arriving meanwhile join the next batch,
        // which grows with the load (to 64 ids). Measured at 16 callers: 44k reads/s with 1 or
        // 2 slots, 21k unbatched. PostgreSQL reads never wait on row locks, so a batch only
        // waits on the network, and a hung one is abandoned at the operation timeout.
        self.sessionReads = Batcher(maxInFlight: 1, distinctSessions: false)
        // Writes of different sessions likewise share one statement and one commit.
        self.stateWrites = Batcher(maxInFlight: 1, distinctSessions: true)
        self.eventWrites = Batcher(maxInFlight: 1, distinctSessions: true)
    }

    /// Runs the client's connection pool until cancelled or graceful shutdown.
    public func run() async {
        await client.run()
    }

    /// A cleanup service using ``Configuration/sessionTTL`` and ``Configuration/cleanupInterval``.
    public func cleanupService(logger: Logger = Logger(label: "mcp.session.cleanup")) -> SessionCleanupService {
        SessionCleanupService(storage: self, ttl: configuration.sessionTTL, interval: configuration.cleanupInterval, logger: logger)
    }

    /// The limits from the configuration.
    public var limits: SessionLimits { configuration.limits }

    // MARK: Running statements

    /// Runs `body` once the schema is ready, within the operation timeout, mapping every error
    /// to the contract's.
    private func perform<T: Sendable>(_ what: @autoclosure () -> String, _ body: @escaping @Sendable () async throws -> T) async throws(SessionStorageError) -> T {
        do {
            return try await bounded(body)
        } catch {
            throw PostgresErrors.map(error, what())
        }
    }

    /// Runs `body` once the schema is ready, answering by the operation timeout even if `body`
    /// ignores cancellation.
    private func bounded<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await watchdog.run(timeout: configuration.operationTimeout) { [self] in
            try await self.migrateIfNeeded()
            return try await body()
        }
    }

    /// Creates or migrates the tables once per storage; a failure (database down) is retried
    /// by the next call.
    private func migrateIfNeeded() async throws {
        guard configuration.migrations == .automatic, !migrated.load(ordering: .acquiring) else { return }
        let task = migration.withLock { task in
            if let task { return task }
            let started = Task { [client, configuration, logger] in
                try await PostgresSchema.migrate(client, schema: configuration.schema, logger: logger)
            }
            task = started
            return started
        }
        do {
            try await task.value
            migrated.store(true, ordering: .releasing)
        } catch {
            migration.withLock { if $0 == task { $0 = nil } }
            throw error
        }
    }

    private func all<S: PostgresPreparedStatement>(_ statement: S) async throws -> [S.Row] {
        var rows: [S.Row] = []
        for try await row in try await client.execute(statement, logger: logger) { rows.append(row) }
        return rows
    }

    private func first<S: PostgresPreparedStatement>(_ statement: S) async throws -> S.Row? {
        for try await row in try await client.execute(statement, logger: logger) { return row }
        return nil
    }

    /// Runs a write of session `id`, with its NOTIFY inside the same statement when the
    /// attached bus's emitter claims it (and then with the queued changes the claim carries), or
    /// its `change` queued once it committed. `kind` and `suffix` frame the value the statement
    /// returns (a version or an event id) in the message.
    private func write<S: NotifyingWrite>(
        _ statement: S, of id: SessionID, kind: Character, suffix: String, change: (S.Row) -> SessionChange
    ) async throws -> S.Row? {
        guard let emitter = emitter.withLock({ $0 }) else { return try await first(statement) }
        guard let claim = emitter.claim(carrying: true) else {
            return try await emitter.deferring(
                { try await first(statement) }, changed: { $0.map { [change($0)] } ?? [] }, uncertain: [.sessionChanged(id, version: .max)])
        }
        do {
            let row = try await first(Notifying(
                base: statement, channel: emitter.channel, prefix: claim.lines + "\(kind)|\(emitter.origin)|0|", suffix: suffix))
            // No row written, no NOTIFY sent: what the claim carried goes back.
            if row == nil { emitter.unclaim(claim) }
            return row
        } catch {
            emitter.unclaim(claim)
            throw error
        }
    }

    /// Runs a write given the emitter its statement should NOTIFY through: the attached bus's,
    /// if it claims this write. Otherwise the write runs without, and the changes it made
    /// (`changed`), or might have made if it failed (`uncertain`), are queued for the sender.
    private func emitting<T, Failure: Error>(
        changed: (T) -> [SessionChange], uncertain: @autoclosure () -> [SessionChange],
        _ write: (ChangeEmitter?) async throws(Failure) -> T
    ) async throws(Failure) -> T {
        guard let emitter = emitter.withLock({ $0 }) else { return try await write(nil) }
        if emitter.claim(carrying: false) != nil { return try await write(emitter) }
        return try await emitter.deferring({ () async throws(Failure) -> T in try await write(nil) }, changed: changed, uncertain: uncertain())
    }

    private func exists(_ id: SessionID) async throws -> Bool {
        let rows = try await client.query("SELECT 1 FROM mcp_sessions WHERE id = \(id.rawValue)", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    // MARK: Sessions

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let session = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        let insert = InsertSession(session: session, state: try StateColumns(fields.state, limits: limits))
        try await perform("creating session \(session.id)") { [self] in
            guard try await write(insert, of: session.id, kind: "c", suffix: "|" + session.id.rawValue, change: { _ in .sessionChanged(session.id, version: 1) }) != nil else {
                throw SessionStorageError(.versionConflict, "session \(session.id) already exists")
            }
        }
        return session
    }

    /// Concurrent reads of different sessions share round trips (see `Batcher`); a batch of
    /// one runs the single-row statement.
    ///
    /// Each batch, not each caller, runs under the operation timeout: a batch holds the only
    /// read slot, so a fetch stuck past its cancellation must be abandoned at the deadline or
    /// every later reader would wait behind it. A caller waits at most for the batch before
    /// its own and its own, two timeouts.
    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        do {
            return try await sessionReads.run(id, ()) { [self] calls in
                try await bounded { [self] in
                    if calls.count == 1 { return try await first(SelectSession(id: id)).map { [id: $0] } ?? [:] }
                    let ids = Array(Set(calls.map(\.id)))
                    return Dictionary(try await all(SelectSessions(ids: ids)).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
                }
            }
        } catch {
            throw PostgresErrors.map(error, "reading session \(id)")
        }
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        var updated = session
        updated.lastActivity = Date()
        updated.version += 1
        let statement = UpdateSession(
            insert: InsertSession(session: updated, state: try StateColumns(session.state, limits: limits)), expectedVersion: session.version)
        let createdAt = try await perform("updating session \(session.id)") { [self] in
            let change = SessionChange.sessionChanged(session.id, version: session.version + 1)
            guard let createdAt = try await write(statement, of: session.id, kind: "c", suffix: "|" + session.id.rawValue, change: { _ in change }) else {
                guard try await exists(session.id) else { throw SessionStorageError.sessionNotFound(session.id) }
                throw SessionStorageError(.versionConflict, "session \(session.id) changed since version \(session.version)")
            }
            return createdAt
        }
        updated.createdAt = createdAt
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let threshold = now.addingTimeInterval(-limits.activityWriteInterval.timeInterval)
        // The UPDATE writes only when the stored activity is old; the outer SELECT tells a
        // missing session apart, in the same round trip.
        try await perform("touching session \(id)") { [self] in
            let rows = try await client.query(
                """
                WITH touched AS (UPDATE mcp_sessions SET last_activity = \(now) WHERE id = \(id.rawValue) AND last_activity < \(threshold) RETURNING 1)
                SELECT EXISTS (SELECT 1 FROM mcp_sessions WHERE id = \(id.rawValue))
                """, logger: logger)
            var found = false
            for try await row in rows { found = try row.decode(Bool.self) }
            guard found else { throw SessionStorageError.sessionNotFound(id) }
        }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        try await emitting(changed: { $0 ? [.sessionDeleted(id)] : [] }, uncertain: [.sessionDeleted(id)]) { [self] emitter throws(SessionStorageError) in
            try await deleteSession(id, notifying: emitter)
        }
    }

    /// The DELETE, with its NOTIFY inside when `emitter` is given.
    private func deleteSession(_ id: SessionID, notifying emitter: ChangeEmitter?) async throws(SessionStorageError) -> Bool {
        try await perform("deleting session \(id)") { [self] in
            let rows: PostgresRowSequence
            if let emitter {
                rows = try await client.query(
                    """
                    WITH deleted AS (DELETE FROM mcp_sessions WHERE id = \(id.rawValue) RETURNING id), \
                    notified AS (SELECT count(*) FROM (SELECT pg_notify(\(emitter.channel), \("d|\(emitter.origin)|0|" + id.rawValue)) FROM deleted) sent) \
                    SELECT 1 FROM deleted, notified
                    """, logger: logger)
            } else {
                rows = try await client.query("DELETE FROM mcp_sessions WHERE id = \(id.rawValue) RETURNING 1", logger: logger)
            }
            for try await _ in rows { return true }
            return false
        }
    }

    public func listSessions() async throws(SessionStorageError) -> [SessionID] {
        try await perform("listing sessions") { [self] in
            var ids: [SessionID] = []
            for try await text in try await client.query("SELECT id FROM mcp_sessions", logger: logger).decode(String.self) {
                do { ids.append(try SessionID(validating: text)) } catch { throw SessionStorageError.corrupted("stored session id \(text.debugDescription) is malformed") }
            }
            return ids
        }
    }

    // MARK: State

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try limits.checkKey(key)
        let row = try await perform("reading state of \(id)") { [self] in try await first(SelectStateValue(id: id, key: JSONBEscaping.key(key))) }
        guard let row else { throw .sessionNotFound(id) }
        return row?.value
    }

    /// Concurrent writes to different sessions share one statement (see `Batcher`). A write
    /// the statement did not apply found no session, or one too full to take it.
    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try limits.encodeStateValue(value, forKey: key)
        let write = StateWrite(
            key: JSONBEscaping.key(key), json: try JSONBEscaping.text(value, encoded: data), size: SessionLimits.entryBytes(key: key, value: data))
        let now = Date()
        do {
            let batched = try await stateWrites.run(id, write) { [self] calls in
                try await bounded { [self] in try await setStates(calls, now: now) }
            }
            if let batched { return batched }
        } catch {
            throw PostgresErrors.map(error, "setting state of \(id)")
        }
        guard try await perform("setting state of \(id)", { [self] in try await exists(id) }) else { throw .sessionNotFound(id) }
        throw SessionStorageError(.limitExceeded, "setting '\(key)' would take session \(id) past its state limit of \(limits.maxStateBytesPerSession) bytes")
    }

    /// One batch of state writes: one statement for a lone write, one `UPDATE … FROM unnest`
    /// for several. Sessions the statement did not change are left out of the answer.
    private func setStates(_ calls: [(id: SessionID, input: StateWrite)], now: Date) async throws -> [SessionID: Int64] {
        let limit = limits.maxStateBytesPerSession
        if calls.count == 1, let call = calls.first {
            let statement = SetState(id: call.id, write: call.input, now: now, limit: limit)
            return try await write(statement, of: call.id, kind: "c", suffix: "|" + call.id.rawValue) { .sessionChanged(call.id, version: $0) }.map { [call.id: $0] } ?? [:]
        }
        return try await batch(SetStates(calls: calls, now: now, limit: limit), of: calls.map(\.id), kind: "c") { .sessionChanged($0, version: $1) }
    }

    /// Runs a batch statement, with its changes' NOTIFYs inside when the attached bus's emitter
    /// claims it, or its rows' changes queued once it committed.
    private func batch<S: BatchWrite>(
        _ statement: S, of ids: [SessionID], kind: Character, change: (SessionID, Int64) -> SessionChange?
    ) async throws -> [SessionID: Int64] {
        let rows = try await emitting(changed: { $0.compactMap(change) }, uncertain: ids.map { .sessionChanged($0, version: .max) }) {
            [self] (emitter: ChangeEmitter?) async throws -> [(SessionID, Int64)] in
            guard let emitter else { return try await all(statement) }
            return try await all(NotifyingBatch(base: statement, channel: emitter.channel, prefix: "\(kind)|\(emitter.origin)|0|"))
        }
        return Dictionary(rows, uniquingKeysWith: { first, _ in first })
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try limits.checkKey(key)
        let version = try await perform("removing state of \(id)") { [self] in
            try await write(RemoveState(id: id, key: JSONBEscaping.key(key), now: Date()), of: id, kind: "c", suffix: "|" + id.rawValue) { .sessionChanged(id, version: $0) }
        }
        guard let version else { throw .sessionNotFound(id) }
        return version
    }

    // MARK: Events

    /// Concurrent appends to different sessions share one statement (see `Batcher`).
    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try limits.encodeEvent(event)
        let now = Date()
        let write = EventWrite(
            stream: event.stream, type: event.type, data: data.map { String(decoding: $0, as: UTF8.self) },
            retryMilliseconds: event.retryMilliseconds.map { Int32(clamping: $0) },
            notifySuffix: "|\(event.stream.rawValue.utf8.count)|\(event.stream.rawValue)\(id.rawValue)")
        let eventID: Int64?
        do {
            eventID = try await eventWrites.run(id, write) { [self] calls in
                try await bounded { [self] in try await appendEvents(calls, now: now) }
            }
        } catch {
            throw PostgresErrors.map(error, "appending an event to \(id)")
        }
        // A batch leaves out only a session it found no row for.
        guard let eventID else { throw .sessionNotFound(id) }
        var normalized = event
        normalized.data = try data.map { (data) throws(SessionStorageError) in try JSONValue.decode(data) }
        return SSEEvent(id: eventID, event: normalized, timestamp: now)
    }

    /// One batch of appends: one statement for a lone append, one over `unnest` for several.
    /// A session the statement found no row for is left out of the answer.
    private func appendEvents(_ calls: [(id: SessionID, input: EventWrite)], now: Date) async throws -> [SessionID: Int64] {
        let keep = limits.maxEventsPerSession
        if calls.count == 1, let call = calls.first {
            let statement = AppendEvent(id: call.id, now: now, event: call.input, keep: keep)
            let change = { (eventID: Int64) in SessionChange.eventAppended(call.id, stream: call.input.stream, eventID: eventID) }
            return try await write(statement, of: call.id, kind: "e", suffix: call.input.notifySuffix, change: change).map { [call.id: $0] } ?? [:]
        }
        let streams = Dictionary(calls.map { ($0.id, $0.input.stream) }, uniquingKeysWith: { first, _ in first })
        return try await batch(AppendEvents(calls: calls, now: now, keep: keep), of: calls.map(\.id), kind: "e") { id, eventID in
            streams[id].map { .eventAppended(id, stream: $0, eventID: eventID) }
        }
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await perform("replaying events of \(id)") { [self] in
            let events = try await all(EventsAfter(id: id, cursor: eventID, limit: limit))
            if events.isEmpty, !(try await exists(id)) { throw SessionStorageError.sessionNotFound(id) }
            return events
        }
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await perform("replaying stream \(stream) of \(id)") { [self] in
            let events = try await all(StreamEventsAfter(id: id, stream: stream, after: eventID, limit: limit))
            if events.isEmpty, !(try await exists(id)) { throw SessionStorageError.sessionNotFound(id) }
            return events
        }
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        try await perform("reading event \(eventID) of \(id)") { [self] in
            let event = try await all(SelectEvent(id: id, eventID: eventID)).first
            if event == nil, !(try await exists(id)) { throw SessionStorageError.sessionNotFound(id) }
            return event
        }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        try await perform("reading recent events of \(id)") { [self] in
            let events = try await all(RecentEvents(id: id, limit: max(0, limit)))
            if events.isEmpty, !(try await exists(id)) { throw SessionStorageError.sessionNotFound(id) }
            return events.reversed()
        }
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        try await emitting(changed: { _ in [.eventsDeleted(id)] }, uncertain: [.eventsDeleted(id)]) { [self] emitter throws(SessionStorageError) in
            try await deleteEvents(in: id, before: eventID, notifying: emitter)
        }
    }

    /// The DELETE, with its NOTIFY inside when `emitter` is given.
    private func deleteEvents(in id: SessionID, before eventID: Int64, notifying emitter: ChangeEmitter?) async throws(SessionStorageError) -> Int {
        try await perform("deleting events of \(id)") { [self] in
            // Without an emitter the WHERE clause sends nothing (the channel is only bound); one statement either way.
            let channel = emitter?.channel ?? "mcp_session_changes_unused"
            let payload = "t|\(emitter?.origin ?? "")|0|" + id.rawValue
            let rows = try await client.query(
                """
                WITH deleted AS (DELETE FROM mcp_session_events WHERE session_id = \(id.rawValue) AND id < \(eventID) RETURNING 1), \
                notified AS (SELECT pg_notify(\(channel), \(payload)) WHERE \(emitter != nil))
                SELECT (SELECT count(*) FROM deleted), EXISTS (SELECT 1 FROM mcp_sessions WHERE id = \(id.rawValue)) \
                FROM (SELECT count(*) FROM notified) sent
                """, logger: logger)
            for try await (count, found) in rows.decode((Int64, Bool).self) {
                guard found else { throw SessionStorageError.sessionNotFound(id) }
                return Int(count)
            }
            return 0
        }
    }

    // MARK: Housekeeping

    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        // Which sessions a failed pass removed is unknown: `maxAge` bounds what others then hold.
        try await emitting(changed: { $0.map(SessionChange.sessionDeleted) }, uncertain: []) { [self] emitter throws(SessionStorageError) in
            try await expireSessions(olderThan: cutoff, notifying: emitter)
        }
    }

    /// The DELETE, with its NOTIFY inside when `emitter` is given. The rows are locked in id
    /// order, like a batch's, so an expiry pass and a batch of writes never wait on each other
    /// in a cycle.
    private func expireSessions(olderThan cutoff: Date, notifying emitter: ChangeEmitter?) async throws(SessionStorageError) -> [SessionID] {
        try await perform("expiring sessions") { [self] in
            var ids: [SessionID] = []
            let rows: PostgresRowSequence
            if let emitter {
                rows = try await client.query(
                    """
                    WITH expired AS (DELETE FROM mcp_sessions WHERE id IN \
                    (SELECT id FROM mcp_sessions WHERE last_activity < \(cutoff) ORDER BY id FOR UPDATE) RETURNING id), \
                    notified AS (SELECT count(*) FROM (SELECT pg_notify(\(emitter.channel), \("d|\(emitter.origin)|0|") || id) FROM expired) sent) \
                    SELECT id FROM expired, notified
                    """, logger: logger)
            } else {
                rows = try await client.query(
                    """
                    DELETE FROM mcp_sessions WHERE id IN \
                    (SELECT id FROM mcp_sessions WHERE last_activity < \(cutoff) ORDER BY id FOR UPDATE) RETURNING id
                    """, logger: logger)
            }
            for try await text in rows.decode(String.self) {
                if let id = try? SessionID(validating: text) { ids.append(id) }
            }
            return ids
        }
    }

    public func sessionCount() async throws(SessionStorageError) -> Int {
        try await count("SELECT count(*) FROM mcp_sessions", "counting sessions")
    }

    public func eventCount() async throws(SessionStorageError) -> Int {
        try await count("SELECT count(*) FROM mcp_session_events", "counting events")
    }

    private func count(_ sql: String, _ what: String) async throws(SessionStorageError) -> Int {
        try await perform(what) { [self] in
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int64.self) {
                return Int(value)
            }
            return 0
        }
    }

    /// Refreshes the planner's statistics for the session tables.
    public func maintenance() async throws(SessionStorageError) {
        try await perform("maintenance") { [self] in
            try await client.query("ANALYZE mcp_sessions", logger: logger)
            try await client.query("ANALYZE mcp_session_events", logger: logger)
        }
    }
}
