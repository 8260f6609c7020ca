import Foundation
import GRDB
import GRDBSQLite
import Logging
@_spi(Backend) import MCPSessionStorage
import Synchronization

/// Sessions in one SQLite file: the embedded default for a single-instance server.
///
/// Built on GRDB's `DatabasePool` in WAL mode: reads run in parallel with each other and with
/// the one writer. Every write is one short transaction, so a process killed at any moment
/// (SIGKILL included) loses no acknowledged write and leaves a file that opens cleanly.
///
/// ```swift
/// let storage = try SQLiteSessionStorage(configuration: .init(path: "sessions.db"))
/// let session = try await storage.createSession()
/// try await storage.setState("dark", forKey: "theme", in: session.id)
/// ```
public final class SQLiteSessionStorage: SessionStorage {
    /// The configuration the storage was opened with.
    public let configuration: Configuration
    private let pool: DatabasePool
    private let readers: SQLiteReaders
    private let logger: Logger
    /// Writes under way (inline or queued): a write runs inline only when there is none.
    private let writesInFlight = Atomic<Int>(0)
    /// Writes that could not run at once (another under way, or the file locked) and went to
    /// GRDB's writer queue.
    let queuedWrites = Atomic<Int>(0)
    /// Concurrent appends to different sessions share one write transaction.
    private let eventWrites = Batcher<PendingEvent, Int64>(maxInFlight: 1, distinctSessions: true)

    private struct PendingEvent: Sendable {
        let event: NewEvent
        let data: JSONText?
        let now: Date
    }

    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// - Throws: `unavailable` when the file cannot be opened; `corrupted` when it is not a
    ///   database or was written by a newer schema.
    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "mcp.session.sqlite")) throws(SessionStorageError) {
        self.configuration = configuration
        self.logger = logger
        var options = GRDB.Configuration()
        options.maximumReaderCount = max(1, configuration.readers)
        options.busyMode = .timeout(configuration.busyTimeout.timeInterval)
        options.label = "mcp-session-storage"
        let synchronous = configuration.synchronous.rawValue
        options.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            pool = try DatabasePool(path: configuration.path, configuration: options)
            try SQLiteSchema.migrate(pool)
        } catch {
            throw Self.map(error, "opening \(configuration.path)")
        }
        readers = SQLiteReaders(path: configuration.path, busyTimeout: configuration.busyTimeout, maxIdle: max(1, configuration.readers))
        logger.debug("opened SQLite session storage", metadata: ["path": "\(configuration.path)"])
    }

    /// The policy from the configuration.
    public var policy: SessionPolicy { configuration.policy }

    // MARK: Running statements

    // Reads run inline on the calling task, on prepared read-only connections: a read takes a
    // few microseconds and never waits in WAL mode, and handing it to another thread and back
    // costs more than the work (measured here, it cut get-session throughput several times).
    // A write runs inline too when nothing can make it wait (no other write of ours under way,
    // the file's lock free); one that might wait (up to the busy timeout, for another process
    // holding the lock) runs on GRDB's writer queue, a thread of its own, so that it never holds
    // one of the cooperative pool's few threads.

    private func read<T: Sendable>(_ what: @autoclosure () -> String, _ body: @escaping @Sendable (Database) throws -> T)
        async throws(SessionStorageError) -> T
    {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.map(error, what())
        }
    }

    /// A read on the prepared read-only connections (see `SQLiteReaders`).
    private func fastRead<T>(_ what: @autoclosure () -> String, _ body: (SQLiteReader) throws -> T) throws(SessionStorageError) -> T {
        do {
            return try readers.read(body)
        } catch {
            throw Self.map(error, what())
        }
    }

    /// Runs `body` in a write transaction: inline on the calling task when no other write of
    /// this storage is under way and the file's write lock is free at once (then it takes
    /// microseconds), otherwise on GRDB's writer queue, a thread of its own, where it may wait
    /// up to the busy timeout for another process holding the lock.
    private func write<T: Sendable>(_ what: @autoclosure () -> String, _ body: @escaping @Sendable (Database) throws -> T)
        async throws(SessionStorageError) -> T
    {
        do {
            // Inline only where a commit does not wait for the disk: with synchronous=FULL every
            // commit fsyncs, which must not hold a thread of the cooperative pool.
            if configuration.synchronous == .normal,
                writesInFlight.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
            {
                defer { writesInFlight.subtract(1, ordering: .releasing) }
                if let done = try writeHere(body) { return done }
            }
            writesInFlight.add(1, ordering: .acquiringAndReleasing)
            defer { writesInFlight.subtract(1, ordering: .releasing) }
            queuedWrites.add(1, ordering: .relaxed)
            return try await pool.write(body)
        } catch {
            throw Self.map(error, what())
        }
    }

    /// Runs `body` on this thread if the file's write lock is free: GRDB's writer queue is idle
    /// (no write of ours is under way), so its synchronous write runs here.
    private func writeHere<T>(_ body: (Database) throws -> T) throws -> T? {
        try pool.writeWithoutTransaction { db in try Self.withoutWaiting(db, busyTimeout: configuration.busyTimeout, body) }
    }

    /// Runs `body` in an immediate transaction if the file's write lock can be taken without
    /// waiting; `nil` (nothing done) if another connection holds it.
    private static func withoutWaiting<T>(_ db: Database, busyTimeout: Duration, _ body: (Database) throws -> T) throws -> T? {
        guard let connection = db.sqliteConnection else { return nil }
        sqlite3_busy_timeout(connection, 0)
        defer { sqlite3_busy_timeout(connection, Int32(clamping: Int((busyTimeout / .milliseconds(1)).rounded()))) }
        do {
            try db.beginTransaction(.immediate)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return nil
        }
        do {
            let result = try body(db)
            try db.commit()
            return result
        } catch {
            try? db.rollback()
            throw error
        }
    }

    /// Turns whatever a database call threw into the contract's error.
    static func map(_ error: any Error, _ what: String) -> SessionStorageError {
        if let error = error as? SessionStorageError { return error }
        if let error = error as? SQLiteReader.Failure {
            return error.isCorruption
                ? SessionStorageError(.corrupted, "\(what): the database file is damaged or not a database", underlying: error)
                : SessionStorageError(.unavailable, "\(what): SQLite failed", underlying: error)
        }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_FORMAT:
                return SessionStorageError(.corrupted, "\(what): the database file is damaged or not a database", underlying: error)
            case .SQLITE_TOOBIG:
                return SessionStorageError(.limitExceeded, "\(what): value too large for SQLite", underlying: error)
            default:
                return SessionStorageError(.unavailable, "\(what): SQLite failed (\(error.resultCode))", underlying: error)
            }
        }
        return SessionStorageError(.unavailable, "\(what) failed", underlying: error)
    }

    // MARK: Sessions

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let state = try policy.encodeState(fields.state)
        let session = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        let row = try SessionRow(session)
        return try await write("creating session \(session.id)") { db in
            let exists = try db.cachedStatement(sql: SQL.sessionExists)
            if try Bool.fetchOne(exists, arguments: [row.id]) != nil {
                throw SessionStorageError(.versionConflict, "session \(session.id) already exists")
            }
            try db.cachedStatement(sql: SQL.insertSession).execute(arguments: row.arguments(stateBytes: state.total))
            try Self.insertState(state, for: row.id, in: db)
            return session
        }
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        try fastRead("reading session \(id)") { reader in
            var state: [String: JSONValue] = [:]
            try reader.select(.selectState, .text(id.rawValue)) { row in
                let key = row.text(0) ?? ""
                state[key] = try row.json(1, "state value '\(key)' of \(id)")
                return true
            }
            var session: SessionInfo?
            try reader.select(.selectSession, .text(id.rawValue)) { row in
                session = try SessionRow.decode(row, id: id, state: state)
                return false
            }
            return session
        }
    }

    public func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        try fastRead("reading the version of \(id)") { reader -> Int64? in
            var version: Int64?
            try reader.select(.selectVersion, .text(id.rawValue)) { row in
                version = row.integer(0)
                return false
            }
            return version
        }
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let state = try policy.encodeState(session.state)
        var updated = session
        updated.lastActivity = Date()
        updated.version += 1
        let row = try SessionRow(updated)
        let createdAt = try await write("updating session \(session.id)") { db in
            let createdAt = try Double.fetchOne(
                db.cachedStatement(sql: SQL.updateSession), arguments: row.updateArguments(stateBytes: state.total, expected: session.version))
            guard let createdAt else {
                guard let stored = try Int64.fetchOne(db.cachedStatement(sql: SQL.selectVersion), arguments: [row.id]) else {
                    throw SessionStorageError.sessionNotFound(session.id)
                }
                throw SessionStorageError(.versionConflict, "session \(session.id) is at version \(stored), not \(session.version)")
            }
            try db.cachedStatement(sql: SQL.deleteAllState).execute(arguments: [row.id])
            try Self.insertState(state, for: row.id, in: db)
            return createdAt
        }
        // The stored creation time wins over whatever the caller's copy says.
        updated.createdAt = Date(timeIntervalSince1970: createdAt)
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let threshold = now.timeIntervalSince1970 - policy.activityWriteInterval.timeInterval
        // Read first, in parallel with everything else: most touches find a recent activity
        // and must not take the write lock.
        let stored = try fastRead("reading activity of \(id)") { reader in
            var activity: Double?
            try reader.select(.selectActivity, .text(id.rawValue)) { row in
                activity = row.double(0)
                return false
            }
            return activity
        }
        guard let stored else { throw .sessionNotFound(id) }
        guard stored < threshold else { return }
        try await write("touching session \(id)") { db in
            try db.cachedStatement(sql: SQL.touchSession).execute(arguments: [now.timeIntervalSince1970, id.rawValue, threshold])
        }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        try await write("deleting session \(id)") { db in
            try db.cachedStatement(sql: SQL.deleteSession).execute(arguments: [id.rawValue])
            return db.changesCount > 0
        }
    }

    public func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        try await read("listing sessions") { db in
            try String.fetchAll(db.cachedStatement(sql: SQL.listSessions), arguments: [cursor?.rawValue ?? "", max(0, limit)]).map { text in
                do { return try SessionID(validating: text) } catch {
                    throw SessionStorageError.corrupted("stored session id \(text.debugDescription) is malformed")
                }
            }
        }
    }

    // MARK: State

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try policy.checkKey(key)
        return try fastRead("reading state of \(id)") { reader -> JSONValue? in
            var value: JSONValue?
            try reader.select(.selectStateValue, .text(id.rawValue), .text(key)) { row in
                value = try row.json(0, "state value '\(key)' of \(id)")
                return false
            }
            if value == nil { try Self.requireSession(id, in: reader) }
            return value
        }
    }

    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try policy.encodeStateValue(value, forKey: key)
        let size = SessionPolicy.entryBytes(key: key, value: data)
        let policy = policy
        let now = Date().timeIntervalSince1970
        return try await write("setting state of \(id)") { db in
            let old = try Int.fetchOne(db.cachedStatement(sql: SQL.selectStateSize), arguments: [id.rawValue, key]) ?? 0
            guard let row = try Row.fetchOne(db.cachedStatement(sql: SQL.bumpForState), arguments: [size - old, now, id.rawValue]) else {
                throw SessionStorageError.sessionNotFound(id)
            }
            let (version, total): (Int64, Int) = (row[0], row[1])
            try policy.checkStateTotal(total)
            try db.cachedStatement(sql: SQL.upsertState).execute(arguments: [id.rawValue, key, data])
            return version
        }
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try policy.checkKey(key)
        let now = Date().timeIntervalSince1970
        return try await write("removing state of \(id)") { db in
            let old = try Int.fetchOne(db.cachedStatement(sql: SQL.selectStateSize), arguments: [id.rawValue, key]) ?? 0
            guard let row = try Row.fetchOne(db.cachedStatement(sql: SQL.bumpForState), arguments: [-old, now, id.rawValue]) else {
                throw SessionStorageError.sessionNotFound(id)
            }
            try db.cachedStatement(sql: SQL.deleteStateKey).execute(arguments: [id.rawValue, key])
            return row[0]
        }
    }

    private static func insertState(_ state: EncodedState, for id: String, in db: Database) throws {
        guard !state.values.isEmpty else { return }
        let insert = try db.cachedStatement(sql: SQL.upsertState)
        for (key, value) in state.values { try insert.execute(arguments: [id, key, value]) }
    }

    // MARK: Events

    /// Appends that arrive while another is being written wait, and then go together in one
    /// transaction, each in a savepoint of its own: under concurrency, one writer-lock round
    /// and one commit serve many appends. An append the batch could not make (its session is
    /// missing, or it failed) runs alone, to report why.
    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try policy.encodeEvent(event)
        let pending = PendingEvent(event: event, data: data, now: Date())
        let keep = Int64(policy.maxEventsPerSession)
        var stored: Int64?
        do {
            stored = try await eventWrites.run(id, pending) { [self] calls in
                try await write("appending events") { db in
                    // Alone, an append needs no savepoint: its failure is the transaction's.
                    if calls.count == 1, let call = calls.first {
                        return try Self.append(call.input, to: call.id, keep: keep, in: db).map { [call.id: $0] } ?? [:]
                    }
                    var ids: [SessionID: Int64] = [:]
                    for call in calls {
                        try? db.inSavepoint {
                            ids[call.id] = try Self.append(call.input, to: call.id, keep: keep, in: db)
                            return .commit
                        }
                    }
                    return ids
                }
            }
        } catch {
            throw Self.map(error, "appending an event to \(id)")
        }
        if stored == nil {
            stored = try await write("appending an event to \(id)") { db in try Self.append(pending, to: id, keep: keep, in: db) }
        }
        guard let stored else { throw .sessionNotFound(id) }
        let now = pending.now
        return SSEEvent(id: stored, event: event, encodedData: data, timestamp: now)
    }

    /// One append inside a write transaction; `nil` when the session does not exist.
    private static func append(_ pending: PendingEvent, to id: SessionID, keep: Int64, in db: Database) throws -> Int64? {
        let now = pending.now.timeIntervalSince1970
        guard let eventID = try Int64.fetchOne(db.cachedStatement(sql: SQL.nextEventID), arguments: [now, id.rawValue]) else { return nil }
        try db.cachedStatement(sql: SQL.insertEvent).execute(arguments: [
            id.rawValue, eventID, pending.event.stream.rawValue, now, pending.event.type, pending.data.map { Data($0.bytes) },
            pending.event.retryMilliseconds,
        ])
        // Ids are dense per session, so "keep the newest N" is one indexed range delete.
        if eventID > keep {
            try db.cachedStatement(sql: SQL.trimEvents).execute(arguments: [id.rawValue, eventID - keep])
        }
        return eventID
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try fastRead("replaying events of \(id)") { reader in
            var stream: String?
            try reader.select(.selectEventStream, .text(id.rawValue), .integer(eventID)) { row in
                stream = row.text(0)
                return false
            }
            guard let stream else {
                try Self.requireSession(id, in: reader)
                return []
            }
            var events: [SSEEvent] = []
            try reader.select(.selectEventsAfter, .text(id.rawValue), .text(stream), .integer(eventID), .integer(Int64(limit ?? -1))) { row in
                events.append(try EventRow.decode(row))
                return true
            }
            return events
        }
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try fastRead("replaying stream \(stream) of \(id)") { reader in
            var events: [SSEEvent] = []
            try reader.select(.selectEventsAfter, .text(id.rawValue), .text(stream.rawValue), .integer(eventID), .integer(Int64(limit ?? -1))) {
                row in
                events.append(try EventRow.decode(row))
                return true
            }
            if events.isEmpty { try Self.requireSession(id, in: reader) }
            return events
        }
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        try fastRead("reading event \(eventID) of \(id)") { reader in
            var event: SSEEvent?
            try reader.select(.selectEvent, .text(id.rawValue), .integer(eventID)) { row in
                event = try EventRow.decode(row)
                return false
            }
            if event == nil { try Self.requireSession(id, in: reader) }
            return event
        }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        try fastRead("reading recent events of \(id)") { reader in
            try Self.requireSession(id, in: reader)
            var events: [SSEEvent] = []
            try reader.select(.selectRecentEvents, .text(id.rawValue), .integer(Int64(max(0, limit)))) { row in
                events.append(try EventRow.decode(row))
                return true
            }
            return events.reversed()
        }
    }

    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        try await write("deleting events of \(id)") { db in
            try Self.requireSession(id, in: db)
            try db.cachedStatement(sql: SQL.deleteEventsBefore).execute(arguments: [id.rawValue, eventID])
            return db.changesCount
        }
    }

    private static func requireSession(_ id: SessionID, in reader: SQLiteReader) throws {
        var exists = false
        try reader.select(.sessionExists, .text(id.rawValue)) { _ in
            exists = true
            return false
        }
        guard exists else { throw SessionStorageError.sessionNotFound(id) }
    }

    private static func requireSession(_ id: SessionID, in db: Database) throws {
        guard try Bool.fetchOne(db.cachedStatement(sql: SQL.sessionExists), arguments: [id.rawValue]) != nil else {
            throw SessionStorageError.sessionNotFound(id)
        }
    }

    // MARK: Leases

    public func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? {
        try policy.checkLease(name)
        return try fastRead("reading lease \(name) of \(id)") { reader -> Lease? in
            var lease: Lease?
            try reader.select(.selectLease, .text(id.rawValue), .text(name)) { row in
                lease = Lease(holder: row.text(0) ?? "", generation: row.integer(1))
                return false
            }
            if lease == nil { try Self.requireSession(id, in: reader) }
            return lease
        }
    }

    public func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try policy.checkLease(name, expected, new)
        return try await write("swapping lease \(name) of \(id)") { db in
            try Self.requireSession(id, in: db)
            let row = try Row.fetchOne(db.cachedStatement(sql: SQL.selectLease), arguments: [id.rawValue, name])
            let held = row.map { Lease(holder: $0[0], generation: $0[1]) }
            guard held == expected else { return false }
            if let new {
                try db.cachedStatement(sql: SQL.upsertLease).execute(arguments: [id.rawValue, name, new.holder, new.generation])
            } else {
                try db.cachedStatement(sql: SQL.deleteLease).execute(arguments: [id.rawValue, name])
            }
            return true
        }
    }

    // MARK: Housekeeping

    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        let ids = try await write("expiring sessions") { db in
            try String.fetchAll(db.cachedStatement(sql: SQL.expireSessions), arguments: [cutoff.timeIntervalSince1970])
        }
        return ids.compactMap { try? SessionID(validating: $0) }
    }

    public func sessionCount() async throws(SessionStorageError) -> Int {
        try await read("counting sessions") { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM sessions") ?? 0 }
    }

    public func eventCount() async throws(SessionStorageError) -> Int {
        try await read("counting events") { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM session_events") ?? 0 }
    }

    /// Checkpoints the WAL into the main file (so it does not grow without bound under
    /// constant readers) and refreshes the query planner's statistics.
    public func maintenance() async throws(SessionStorageError) {
        do {
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                try db.execute(sql: "PRAGMA optimize")
            }
        } catch {
            throw Self.map(error, "maintenance")
        }
    }
}
