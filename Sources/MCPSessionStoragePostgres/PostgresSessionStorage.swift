import Foundation
import Logging
@_spi(Backend) import MCPSessionStorage
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
///
/// Built with a ``ChangeEmitter`` (shared with a ``PostgresChangeBus`` on the same database),
/// every write sends its change with a NOTIFY inside its own statement: the other instances
/// hear of it if and only if it commits.
public final class PostgresSessionStorage: ChangeAnnouncingStorage, Service {
    /// The configuration the storage was made with.
    public let configuration: Configuration
    /// The PostgresNIO client, for running your own queries on the same pool.
    public let client: PostgresClient
    /// What the writes send their changes through, if anything.
    public let changeEmitter: ChangeEmitter?
    private let logger: Logger
    private let migrated = Atomic<Bool>(false)
    private let migration = Mutex<Task<Void, any Error>?>(nil)
    private let watchdog = DeadlineWatchdog()
    private let sessionReads: Batcher<Void, SessionInfo>
    private let versionReads: Batcher<Void, Int64>
    private let stateWrites: Batcher<StateWrite, Int64>
    private let eventWrites: Batcher<EventWrite, Int64>

    /// Makes the storage and its client. Nothing connects until ``run()`` runs.
    /// - Parameters:
    ///   - configuration: Where to connect and how to behave.
    ///   - changes: What the writes send their changes through: pass the emitter of the
    ///     ``PostgresChangeBus`` the instances share (on this same database) to have every
    ///     write carry its NOTIFY. `nil` (the default): the writes send nothing themselves.
    /// - Throws: `invalidInput` for a malformed schema name.
    public init(configuration: Configuration, changes: ChangeEmitter? = nil, logger: Logger = Logger(label: "mcp.session.postgres"))
        throws(SessionStorageError)
    {
        // State sizes travel as int4 (the `state_bytes` column): limits past it would trap there.
        let policy = configuration.policy
        let half = Int(Int32.max / 2)  // a key and a value together stay within int4
        guard policy.maxStateBytesPerSession <= Int32.max, policy.maxStateValueBytes <= half, policy.maxKeyBytes <= half else {
            throw SessionStorageError(.invalidInput, "PostgreSQL stores state sizes as integer: state limits must stay below 2 GiB")
        }
        self.configuration = configuration
        self.changeEmitter = changes
        self.logger = logger
        self.client = PostgresClient(configuration: try configuration.clientConfiguration(), backgroundLogger: logger)
        // One batch of session reads in flight: readers arriving meanwhile join the next batch,
        // which grows with the load (to 64 ids). PostgreSQL reads never wait on row locks, so a
        // batch only waits on the network, and a hung one is abandoned at the operation timeout.
        self.sessionReads = Batcher(maxInFlight: 1, distinctSessions: false)
        self.versionReads = Batcher(maxInFlight: 1, distinctSessions: false)
        // Writes of different sessions likewise share one statement and one commit.
        self.stateWrites = Batcher(maxInFlight: 1, distinctSessions: true)
        self.eventWrites = Batcher(maxInFlight: 1, distinctSessions: true)
    }

    /// Runs the client's connection pool until cancelled or graceful shutdown.
    public func run() async {
        await client.run()
    }

    /// The policy from the configuration.
    public var policy: SessionPolicy { configuration.policy }

    // MARK: Running statements

    /// Runs `body` once the schema is ready, within the operation timeout, mapping every error
    /// to the contract's.
    private func perform<T: Sendable>(_ what: @autoclosure () -> String, _ body: @escaping @Sendable () async throws -> T)
        async throws(SessionStorageError) -> T
    {
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

    func all<S: PostgresPreparedStatement>(_ statement: S) async throws -> [S.Row] {
        var rows: [S.Row] = []
        for try await row in try await client.execute(statement, logger: logger) { rows.append(row) }
        return rows
    }

    func first<S: PostgresPreparedStatement>(_ statement: S) async throws -> S.Row? {
        for try await row in try await client.execute(statement, logger: logger) { return row }
        return nil
    }

    private func exists(_ id: SessionID) async throws -> Bool {
        try await first(SessionExists(id: id)) != nil
    }

    /// The instance id messages carry (empty when the writes send none).
    private var origin: String { changeEmitter?.instanceID ?? "" }

    // MARK: Sessions

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let session = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        let insert = InsertSession(session: session, state: try StateColumns(fields.state, policy: policy))
        let message = ChangeMessageText.changed(session.id, origin: origin)
        try await perform("creating session \(session.id)") { [self] in
            guard try await write(insert, of: session.id, message: message, change: { _ in .changed(session.id, version: 1) }) != nil else {
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

    /// Concurrent calls share one `WHERE id = ANY(...)` round trip, under the operation timeout
    /// per batch, as session reads do.
    public func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        do {
            return try await versionReads.run(id, ()) { [self] calls in
                try await bounded { [self] in
                    Dictionary(try await all(SelectVersions(ids: Array(Set(calls.map(\.id))))), uniquingKeysWith: { first, _ in first })
                }
            }
        } catch {
            throw PostgresErrors.map(error, "reading the version of \(id)")
        }
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        var updated = session
        updated.lastActivity = Date()
        updated.version += 1
        let statement = UpdateSession(
            insert: InsertSession(session: updated, state: try StateColumns(session.state, policy: policy)), expectedVersion: session.version)
        let message = ChangeMessageText.changed(session.id, origin: origin)
        let createdAt = try await perform("updating session \(session.id)") { [self] in
            let change = SessionChange.changed(session.id, version: session.version + 1)
            guard let createdAt = try await write(statement, of: session.id, message: message, change: { _ in change }) else {
                guard try await exists(session.id) else { throw SessionStorageError.sessionNotFound(session.id) }
                throw SessionStorageError(.versionConflict, "session \(session.id) changed since version \(session.version)")
            }
            return createdAt
        }
        updated.createdAt = createdAt
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let statement = TouchSession(id: id, now: now, olderThan: now.addingTimeInterval(-policy.activityWriteInterval.timeInterval))
        let found = try await perform("touching session \(id)") { [self] in try await first(statement) ?? false }
        guard found else { throw .sessionNotFound(id) }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        let message = ChangeMessageText.transactional(.deleted(id), origin: origin)
        return try await announcing(changed: { $0 ? [.deleted(id)] : [] }, uncertain: [.deleted(id)]) { [self] emitter throws(SessionStorageError) in
            try await perform("deleting session \(id)") { [self] in
                !(try await run(DeleteSession(id: id), announcing: message, through: emitter)).isEmpty
            }
        }
    }

    // MARK: State

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try policy.checkKey(key)
        let row = try await perform("reading state of \(id)") { [self] in try await first(SelectStateValue(id: id, key: JSONBEscaping.key(key))) }
        guard let row else { throw .sessionNotFound(id) }
        return row?.value
    }

    /// Concurrent writes to different sessions share one statement (see `Batcher`). A write
    /// the statement did not apply found no session, or one too full to take it.
    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try policy.encodeStateValue(value, forKey: key)
        let message = ChangeMessageText.changed(id, origin: origin)
        let write = StateWrite(
            key: JSONBEscaping.key(key), json: try JSONBEscaping.text(value, encoded: data), size: SessionPolicy.entryBytes(key: key, value: data),
            messageSuffix: message.suffix)
        let now = Date()
        do {
            let batched = try await stateWrites.run(id, write) { [self] calls in
                try await bounded { [self] in try await setStates(calls, now: now, messagePrefix: message.prefix) }
            }
            if let batched { return batched }
        } catch {
            throw PostgresErrors.map(error, "setting state of \(id)")
        }
        guard try await perform("setting state of \(id)", { [self] in try await exists(id) }) else { throw .sessionNotFound(id) }
        throw SessionStorageError(
            .limitExceeded, "setting '\(key)' would take session \(id) past its state limit of \(policy.maxStateBytesPerSession) bytes")
    }

    /// One batch of state writes: one statement for a lone write, one `UPDATE … FROM unnest`
    /// for several. Sessions the statement did not change are left out of the answer.
    private func setStates(_ calls: [(id: SessionID, input: StateWrite)], now: Date, messagePrefix: String) async throws -> [SessionID: Int64] {
        let limit = policy.maxStateBytesPerSession
        if calls.count == 1, let call = calls.first {
            let statement = SetState(id: call.id, write: call.input, now: now, limit: limit)
            let message = ChangeMessageText.Template(prefix: messagePrefix, suffix: call.input.messageSuffix)
            return try await write(statement, of: call.id, message: message) { .changed(call.id, version: $0) }.map { [call.id: $0] } ?? [:]
        }
        return try await batch(SetStates(calls: calls, now: now, limit: limit), of: calls.map(\.id), prefix: messagePrefix) {
            .changed($0, version: $1)
        }
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try policy.checkKey(key)
        let message = ChangeMessageText.changed(id, origin: origin)
        let version = try await perform("removing state of \(id)") { [self] in
            try await write(RemoveState(id: id, key: JSONBEscaping.key(key), now: Date()), of: id, message: message) { .changed(id, version: $0) }
        }
        guard let version else { throw .sessionNotFound(id) }
        return version
    }

    // MARK: Events

    /// Concurrent appends to different sessions share one statement (see `Batcher`).
    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try policy.encodeEvent(event)
        let now = Date()
        let message = ChangeMessageText.eventAppended(id, stream: event.stream, origin: origin)
        let write = EventWrite(
            stream: event.stream, type: event.type, data: data?.string,
            retryMilliseconds: event.retryMilliseconds.map { Int32(clamping: $0) }, messageSuffix: message.suffix)
        let eventID: Int64?
        do {
            eventID = try await eventWrites.run(id, write) { [self] calls in
                try await bounded { [self] in try await appendEvents(calls, now: now, messagePrefix: message.prefix) }
            }
        } catch {
            throw PostgresErrors.map(error, "appending an event to \(id)")
        }
        // A batch leaves out only a session it found no row for.
        guard let eventID else { throw .sessionNotFound(id) }
        return SSEEvent(id: eventID, event: event, encodedData: data, timestamp: now)
    }

    /// One batch of appends: one statement for a lone append, one over `unnest` for several.
    /// A session the statement found no row for is left out of the answer.
    private func appendEvents(_ calls: [(id: SessionID, input: EventWrite)], now: Date, messagePrefix: String) async throws -> [SessionID: Int64] {
        let keep = policy.maxEventsPerSession
        if calls.count == 1, let call = calls.first {
            let statement = AppendEvent(id: call.id, now: now, event: call.input, keep: keep)
            let message = ChangeMessageText.Template(prefix: messagePrefix, suffix: call.input.messageSuffix)
            let change = { (eventID: Int64) in SessionChange.eventAppended(call.id, stream: call.input.stream, eventID: eventID) }
            return try await write(statement, of: call.id, message: message, change: change).map { [call.id: $0] } ?? [:]
        }
        let streams = Dictionary(calls.map { ($0.id, $0.input.stream) }, uniquingKeysWith: { first, _ in first })
        return try await batch(AppendEvents(calls: calls, now: now, keep: keep), of: calls.map(\.id), prefix: messagePrefix) { id, eventID in
            streams[id].map { .eventAppended(id, stream: $0, eventID: eventID) }
        }
    }

    /// Runs a replay statement; an empty answer checks that the session exists.
    private func replay<S: PostgresPreparedStatement>(_ statement: S, of id: SessionID, _ what: @autoclosure () -> String)
        async throws(SessionStorageError) -> [S.Row]
    where S: Sendable, S.Row: Sendable {
        try await perform(what()) { [self] in
            let rows = try await all(statement)
            if rows.isEmpty, !(try await exists(id)) { throw SessionStorageError.sessionNotFound(id) }
            return rows
        }
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await replay(EventsAfter(id: id, cursor: eventID, limit: limit), of: id, "replaying events of \(id)")
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await replay(StreamEventsAfter(id: id, stream: stream, after: eventID, limit: limit), of: id, "replaying stream \(stream) of \(id)")
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        try await replay(SelectEvent(id: id, eventID: eventID), of: id, "reading event \(eventID) of \(id)").first
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        try await replay(RecentEvents(id: id, limit: max(0, limit)), of: id, "reading recent events of \(id)").reversed()
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        let message = ChangeMessageText.transactional(.eventsDeleted(id), origin: origin)
        let (count, found) = try await announcing(changed: { _ in [.eventsDeleted(id)] }, uncertain: [.eventsDeleted(id)]) {
            [self] emitter throws(SessionStorageError) in
            try await perform("deleting events of \(id)") { [self] in
                try await run(DeleteEvents(id: id, before: eventID), announcing: message, through: emitter).first ?? (0, false)
            }
        }
        guard found else { throw .sessionNotFound(id) }
        return Int(count)
    }

    // MARK: Leases

    public func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? {
        try policy.checkLease(name)
        return try await perform("reading lease \(name) of \(id)") { [self] in
            if let lease = try await first(SelectLease(id: id, lease: name)) { return lease }
            guard try await exists(id) else { throw SessionStorageError.sessionNotFound(id) }
            return nil
        }
    }

    public func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try policy.checkLease(name, expected, new)
        return try await perform("swapping lease \(name) of \(id)") { [self] in
            let swapped: Bool
            switch (expected, new) {
            case (nil, let new?): swapped = try await first(TakeLease(id: id, lease: name, new: new)) != nil
            case (let expected?, let new?): swapped = try await first(ReplaceLease(id: id, lease: name, expected: expected, new: new)) != nil
            case (let expected?, nil): swapped = try await first(ReleaseLease(id: id, lease: name, expected: expected)) != nil
            case (nil, nil): swapped = try await first(SelectLease(id: id, lease: name)) == nil
            }
            // Nothing swapped: tell a missing session from a lease held by someone else.
            if !swapped, !(try await exists(id)) { throw SessionStorageError.sessionNotFound(id) }
            return swapped
        }
    }

    // MARK: Administration

    public func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        try await perform("listing sessions") { [self] in try await all(ListSessions(cursor: cursor, limit: limit)) }
    }

    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        let prefix = ChangeMessageText.deletedPrefix(origin: origin)
        // Which sessions a failed pass removed is unknown: `maxAge` bounds what others then hold.
        let texts = try await announcing(changed: { $0.compactMap { try? SessionID(validating: $0) }.map(SessionChange.deleted) }, uncertain: []) {
            [self] emitter throws(SessionStorageError) in
            try await perform("expiring sessions") { [self] in try await run(ExpireSessions(cutoff: cutoff), announcing: prefix, through: emitter) }
        }
        return texts.compactMap { try? SessionID(validating: $0) }
    }

    public func sessionCount() async throws(SessionStorageError) -> Int {
        try await perform("counting sessions") { [self] in Int(try await first(CountRows(table: .sessions)) ?? 0) }
    }

    public func eventCount() async throws(SessionStorageError) -> Int {
        try await perform("counting events") { [self] in Int(try await first(CountRows(table: .events)) ?? 0) }
    }

    /// Refreshes the planner's statistics for the session tables.
    public func maintenance() async throws(SessionStorageError) {
        try await perform("maintenance") { [self] in
            try await client.query("ANALYZE mcp_sessions", logger: logger)
            try await client.query("ANALYZE mcp_session_events", logger: logger)
        }
    }
}
