import Foundation
import GRDB
import Logging
import MCPSessionStorage

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
    private let logger: Logger

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
        logger.debug("opened SQLite session storage", metadata: ["path": "\(configuration.path)"])
    }

    /// A cleanup service using this storage's ``Configuration/sessionTTL`` and ``Configuration/cleanupInterval``.
    public func cleanupService(logger: Logger = Logger(label: "mcp.session.cleanup")) -> SessionCleanupService {
        SessionCleanupService(storage: self, ttl: configuration.sessionTTL, interval: configuration.cleanupInterval, logger: logger)
    }

    private var limits: SessionLimits { configuration.limits }

    // MARK: Running statements

    private func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(SessionStorageError) -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.map(error, what)
        }
    }

    private func write<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(SessionStorageError) -> T {
        do {
            return try await pool.write(body)
        } catch {
            throw Self.map(error, what)
        }
    }

    /// Turns whatever a database call threw into the contract's error.
    static func map(_ error: any Error, _ what: String) -> SessionStorageError {
        if let error = error as? SessionStorageError { return error }
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
        let state = try limits.encodeState(fields.state)
        let session = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        let row = try SessionRow(session)
        return try await write("creating session \(session.id)") { db in
            let exists = try db.cachedStatement(sql: SQL.sessionExists)
            if try Bool.fetchOne(exists, arguments: [row.id]) != nil {
                throw SessionStorageError(.versionConflict, "session \(session.id) already exists")
            }
            try db.cachedStatement(sql: SQL.insertSession).execute(arguments: row.arguments(stateBytes: state.totalBytes))
            try Self.insertState(state, for: row.id, in: db)
            return session
        }
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        try await read("reading session \(id)") { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: SQL.selectSession), arguments: [id.rawValue]) else { return nil }
            let state = try Row.fetchAll(db.cachedStatement(sql: SQL.selectState), arguments: [id.rawValue])
            return try SessionRow.decode(row, state: state)
        }
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let state = try limits.encodeState(session.state)
        var updated = session
        updated.lastActivity = Date()
        updated.version += 1
        let row = try SessionRow(updated)
        let createdAt = try await write("updating session \(session.id)") { db in
            let createdAt = try Double.fetchOne(
                db.cachedStatement(sql: SQL.updateSession), arguments: row.updateArguments(stateBytes: state.totalBytes, expected: session.version))
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
        let threshold = now.timeIntervalSince1970 - limits.activityWriteInterval.timeInterval
        // Read first, in parallel with everything else: most touches find a recent activity
        // and must not take the write lock.
        let stored = try await read("reading activity of \(id)") { db in
            try Double.fetchOne(db.cachedStatement(sql: SQL.selectActivity), arguments: [id.rawValue])
        }
        guard let stored else { throw .sessionNotFound(id) }
        guard stored < threshold else { return }
        try await write("touching session \(id)") { db in
            try db.cachedStatement(sql: SQL.touchSession).execute(arguments: [now.timeIntervalSince1970, id.rawValue, threshold])
        }
    }

    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        try await write("deleting session \(id)") { db in
            try db.cachedStatement(sql: SQL.deleteSession).execute(arguments: [id.rawValue])
            return db.changesCount > 0
        }
    }

    public func listSessions() async throws(SessionStorageError) -> [SessionID] {
        try await read("listing sessions") { db in
            try String.fetchAll(db.cachedStatement(sql: SQL.listSessions)).map { text in
                do { return try SessionID(validating: text) } catch { throw SessionStorageError.corrupted("stored session id \(text.debugDescription) is malformed") }
            }
        }
    }

    // MARK: State

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try limits.checkKey(key)
        let data = try await read("reading state of \(id)") { db -> Data? in
            if let value = try Data.fetchOne(db.cachedStatement(sql: SQL.selectStateValue), arguments: [id.rawValue, key]) { return value }
            guard try Bool.fetchOne(db.cachedStatement(sql: SQL.sessionExists), arguments: [id.rawValue]) != nil else {
                throw SessionStorageError.sessionNotFound(id)
            }
            return nil
        }
        return try data.map { (data) throws(SessionStorageError) in try SessionRow.decodeJSON(data, "state value '\(key)'") }
    }

    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try limits.encodeStateValue(value, forKey: key)
        let size = key.utf8.count + data.count
        let limit = limits.maxStateBytesPerSession
        let now = Date().timeIntervalSince1970
        return try await write("setting state of \(id)") { db in
            let old = try Int.fetchOne(db.cachedStatement(sql: SQL.selectStateSize), arguments: [id.rawValue, key]) ?? 0
            guard let row = try Row.fetchOne(db.cachedStatement(sql: SQL.bumpForState), arguments: [size - old, now, id.rawValue]) else {
                throw SessionStorageError.sessionNotFound(id)
            }
            let (version, total): (Int64, Int) = (row[0], row[1])
            if total > limit {
                throw SessionStorageError(.limitExceeded, "session state would be \(total) bytes; the limit is \(limit)")
            }
            try db.cachedStatement(sql: SQL.upsertState).execute(arguments: [id.rawValue, key, data])
            return version
        }
    }

    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try limits.checkKey(key)
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

    private static func insertState(_ state: [String: Data], for id: String, in db: Database) throws {
        guard !state.isEmpty else { return }
        let insert = try db.cachedStatement(sql: SQL.upsertState)
        for (key, value) in state { try insert.execute(arguments: [id, key, value]) }
    }

    // MARK: Events

    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try limits.encodeEvent(event)
        let keep = Int64(limits.maxEventsPerSession)
        let now = Date()
        let stored = try await write("appending an event to \(id)") { db -> Int64 in
            guard let eventID = try Int64.fetchOne(db.cachedStatement(sql: SQL.nextEventID), arguments: [now.timeIntervalSince1970, id.rawValue]) else {
                throw SessionStorageError.sessionNotFound(id)
            }
            try db.cachedStatement(sql: SQL.insertEvent).execute(arguments: [
                id.rawValue, eventID, event.stream.rawValue, now.timeIntervalSince1970, event.type, data, event.retryMilliseconds,
            ])
            // Ids are dense per session, so "keep the newest N" is one indexed range delete.
            if eventID > keep {
                try db.cachedStatement(sql: SQL.trimEvents).execute(arguments: [id.rawValue, eventID - keep])
            }
            return eventID
        }
        var normalized = event
        normalized.data = try data.map { (data) throws(SessionStorageError) in try JSONValue.decode(data) }
        return SSEEvent(id: stored, event: normalized, timestamp: now)
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await read("replaying events of \(id)") { db in
            guard let stream = try String.fetchOne(db.cachedStatement(sql: SQL.selectEventStream), arguments: [id.rawValue, eventID]) else {
                try Self.requireSession(id, in: db)
                return []
            }
            let rows = try Row.fetchAll(db.cachedStatement(sql: SQL.selectEventsAfter), arguments: [id.rawValue, stream, eventID, limit ?? -1])
            return try rows.map(EventRow.decode)
        }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        try await read("reading recent events of \(id)") { db in
            try Self.requireSession(id, in: db)
            let rows = try Row.fetchAll(db.cachedStatement(sql: SQL.selectRecentEvents), arguments: [id.rawValue, max(0, limit)])
            return try rows.reversed().map(EventRow.decode)
        }
    }

    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        try await write("deleting events of \(id)") { db in
            try Self.requireSession(id, in: db)
            try db.cachedStatement(sql: SQL.deleteEventsBefore).execute(arguments: [id.rawValue, eventID])
            return db.changesCount
        }
    }

    private static func requireSession(_ id: SessionID, in db: Database) throws {
        guard try Bool.fetchOne(db.cachedStatement(sql: SQL.sessionExists), arguments: [id.rawValue]) != nil else {
            throw SessionStorageError.sessionNotFound(id)
        }
    }

    // MARK: Housekeeping

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

extension [String: Data] {
    /// What a state dictionary counts against the per-session limit: keys plus JSON values.
    var totalBytes: Int { reduce(0) { $0 + $1.key.utf8.count + $1.value.count } }
}
