import Foundation
import GRDBSQLite
@_spi(Backend) import MCPSessionStorage
import Synchronization

/// Read-only connections for the hot reads (get session, one state value, replay), each with
/// its statements prepared once.
///
/// GRDB's `DatabasePool.read` spends about 7 µs of bookkeeping per call (dispatch queues,
/// semaphores, a schema check, unprepared BEGIN/COMMIT), twice what the whole get-session costs
/// in C. GRDB still owns the file, its migrations and every write; these connections only read
/// the committed WAL snapshot, like GRDB's own readers do.
final class SQLiteReaders: Sendable {
    private let path: String
    private let busyTimeoutMilliseconds: Int32
    private let maxIdle: Int
    private let idle = Mutex<[SQLiteReader]>([])

    init(path: String, busyTimeout: Duration, maxIdle: Int) {
        self.path = path
        let milliseconds = busyTimeout.timeInterval * 1000
        self.busyTimeoutMilliseconds = milliseconds < Double(Int32.max) ? Int32(max(0, milliseconds)) : .max
        self.maxIdle = maxIdle
    }

    /// Runs `body` in one read transaction on a connection no other thread is using. More
    /// callers than `maxIdle` at once get extra connections, closed after use.
    func read<T>(_ body: (SQLiteReader) throws -> T) throws -> T {
        let reader = try idle.withLock { $0.popLast() } ?? SQLiteReader(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        var healthy = true
        defer {
            if healthy { idle.withLock { if $0.count < maxIdle { $0.append(reader) } } }
        }
        do {
            try reader.run(.begin)
            defer { _ = try? reader.run(.commit) }
            return try body(reader)
        } catch let error as SQLiteReader.Failure {
            healthy = false  // drop a connection that failed at the SQLite level
            throw error
        }
    }
}

/// One read-only SQLite connection and its prepared statements.
///
/// `@unchecked Sendable`: the connection is opened with `SQLITE_OPEN_NOMUTEX`, so it must never
/// be used by two threads at once. `SQLiteReaders` guarantees it: a reader is either in the
/// `idle` array (behind the mutex, used by nobody) or held by exactly one caller of
/// `SQLiteReaders.read`, which runs synchronously and returns it before anyone else can pop it.
final class SQLiteReader: @unchecked Sendable {
    /// A SQLite result code with its message.
    struct Failure: Error, CustomStringConvertible {
        let code: Int32
        let message: String
        var description: String { "SQLite error \(code): \(message)" }
        var isCorruption: Bool { code & 0xFF == SQLITE_CORRUPT || code & 0xFF == SQLITE_NOTADB }
    }

    /// The statements this connection prepares when it opens.
    enum Query: Int, CaseIterable {
        case begin, commit, selectSession, selectState, sessionExists, selectStateValue, selectActivity
        case selectEventStream, selectEventsAfter, selectEvent, selectRecentEvents, selectLease, selectVersion

        var sql: String {
            switch self {
            case .begin: "BEGIN DEFERRED"
            case .commit: "COMMIT"
            case .selectSession: SQL.selectSession
            case .selectState: SQL.selectState
            case .sessionExists: SQL.sessionExists
            case .selectStateValue: SQL.selectStateValue
            case .selectActivity: SQL.selectActivity
            case .selectEventStream: SQL.selectEventStream
            case .selectEventsAfter: SQL.selectEventsAfter
            case .selectEvent: SQL.selectEvent
            case .selectRecentEvents: SQL.selectRecentEvents
            case .selectLease: SQL.selectLease
            case .selectVersion: SQL.selectVersion
            }
        }
    }

    private let connection: OpaquePointer
    private var statements: [OpaquePointer] = []

    init(path: String, busyTimeoutMilliseconds: Int32) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw Failure(code: code, message: message)
        }
        connection = handle
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        sqlite3_extended_result_codes(handle, 1)
        for query in Query.allCases {
            var statement: OpaquePointer?
            let code = sqlite3_prepare_v3(handle, query.sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
            guard code == SQLITE_OK, let statement else {
                let failure = Failure(code: code, message: String(cString: sqlite3_errmsg(handle)))
                for statement in statements { sqlite3_finalize(statement) }
                sqlite3_close_v2(handle)
                throw failure
            }
            statements.append(statement)
        }
    }

    deinit {
        for statement in statements { sqlite3_finalize(statement) }
        sqlite3_close_v2(connection)
    }

    private func fail(_ code: Int32) -> Failure {
        Failure(code: code, message: String(cString: sqlite3_errmsg(connection)))
    }

    /// Runs a statement that returns no rows.
    func run(_ query: Query) throws {
        let statement = statements[query.rawValue]
        defer { sqlite3_reset(statement) }
        let code = sqlite3_step(statement)
        guard code == SQLITE_DONE || code == SQLITE_ROW else { throw fail(code) }
    }

    /// Binds `arguments` to `query`, then calls `row` for each result row. Return `false` from
    /// `row` to stop early.
    /// Up to four arguments, passed separately so a call allocates no array.
    func select(
        _ query: Query, _ first: Argument, _ second: Argument? = nil, _ third: Argument? = nil, _ fourth: Argument? = nil,
        row: (Row) throws -> Bool
    ) throws {
        let statement = statements[query.rawValue]
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(first, at: 1, in: statement)
        if let second { try bind(second, at: 2, in: statement) }
        if let third { try bind(third, at: 3, in: statement) }
        if let fourth { try bind(fourth, at: 4, in: statement) }
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw fail(code) }
            guard try row(Row(statement: statement)) else { return }
        }
    }

    private func bind(_ argument: Argument, at position: Int32, in statement: OpaquePointer) throws {
        let code: Int32
        switch argument {
        case .text(let text):
            var text = text
            code = text.withUTF8 { bytes in
                sqlite3_bind_text(statement, position, bytes.baseAddress, Int32(bytes.count), SQLITE_TRANSIENT)
            }
        case .integer(let value):
            code = sqlite3_bind_int64(statement, position, value)
        }
        guard code == SQLITE_OK else { throw fail(code) }
    }

    /// A value to bind.
    enum Argument {
        case text(String)
        case integer(Int64)
    }

    /// The current row of a statement, valid only inside the `select` callback.
    struct Row {
        let statement: OpaquePointer

        func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
        func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
        func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }

        func text(_ column: Int32) -> String? {
            guard let bytes = sqlite3_column_text(statement, column) else { return nil }
            let count = Int(sqlite3_column_bytes(statement, column))
            return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
        }

        /// The column's bytes, checked to be JSON but not decoded; `nil` for SQL NULL.
        func jsonText(_ column: Int32, _ what: @autoclosure () -> String) throws -> JSONText? {
            guard sqlite3_column_type(statement, column) != SQLITE_NULL else { return nil }
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else {
                throw SessionStorageError.corrupted("\(what()) is empty")
            }
            do {
                return try JSONText(validating: Array(UnsafeBufferPointer(start: bytes.assumingMemoryBound(to: UInt8.self), count: count)))
            } catch {
                throw SessionStorageError.corrupted("\(what()) is not valid JSON", underlying: error)
            }
        }

        /// The column's bytes parsed as JSON in place; `nil` for SQL NULL.
        func json(_ column: Int32, _ what: @autoclosure () -> String) throws -> JSONValue? {
            guard sqlite3_column_type(statement, column) != SQLITE_NULL else { return nil }
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else {
                throw SessionStorageError.corrupted("\(what()) is empty")
            }
            do {
                return try JSONValue.decode(bytes: UnsafeBufferPointer(start: bytes.assumingMemoryBound(to: UInt8.self), count: count))
            } catch {
                throw SessionStorageError.corrupted("\(what()) is not valid JSON", underlying: error)
            }
        }
    }
}

/// SQLite's "copy the bound bytes now" destructor, which Swift cannot import as a constant.
private let SQLITE_TRANSIENT = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
