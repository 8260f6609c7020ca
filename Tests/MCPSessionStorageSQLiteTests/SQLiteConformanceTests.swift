import Foundation
import MCPSessionStorage
import MCPSessionStorageSQLite
import MCPSessionStorageTesting
import Testing

/// A fresh database file under the system's temporary folder.
func temporaryDatabasePath() -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mcp-sqlite-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.appendingPathComponent("\(UUID().uuidString).db").path
}

@Suite("SQLiteSessionStorage")
struct SQLiteConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in
            try SQLiteSessionStorage(configuration: .init(path: temporaryDatabasePath(), policy: policy))
        }
    }

    @Test("sessions, state and events survive reopening the file")
    func reopen() async throws {
        let path = temporaryDatabasePath()
        let id: SessionID
        do {
            let storage = try SQLiteSessionStorage(configuration: .init(path: path))
            id = try await storage.createSession(NewSession(protocolVersion: "2025-06-18")).id
            try await storage.setState(["deep": [1, 2]], forKey: "k", in: id)
            _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: "hello"), to: id)
        }
        let reopened = try SQLiteSessionStorage(configuration: .init(path: path))
        let session = try #require(try await reopened.session(id))
        #expect(session.state == ["k": ["deep": [1, 2]]])
        #expect(session.version == 2)
        #expect(try await reopened.recentEvents(in: id, limit: 5).map(\.data) == ["hello"])
    }

    @Test("a file that is not a database is corrupted, not a crash")
    func notADatabase() throws {
        let path = temporaryDatabasePath()
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        #expect { try SQLiteSessionStorage(configuration: .init(path: path)) } throws: { error in
            (error as? SessionStorageError)?.code == .corrupted
        }
    }

    @Test("a folder that cannot hold the file is unavailable")
    func unopenable() throws {
        #expect { try SQLiteSessionStorage(configuration: .init(path: "/proc/no-such-dir/x.db")) } throws: { error in
            (error as? SessionStorageError)?.code == .unavailable
        }
    }

    @Test("a stored value that is not JSON reads as corrupted")
    func corruptedValue() async throws {
        let path = temporaryDatabasePath()
        let storage = try SQLiteSessionStorage(configuration: .init(path: path))
        let id = try await storage.createSession().id
        try await storage.setState(1, forKey: "k", in: id)
        try sqlite3(path, "UPDATE session_state SET value = X'7B7B' WHERE key = 'k'")
        await #expect { try await storage.stateValue(forKey: "k", in: id) } throws: { error in
            (error as? SessionStorageError)?.code == .corrupted
        }
        await #expect { try await storage.session(id) } throws: { error in
            (error as? SessionStorageError)?.code == .corrupted
        }
    }

    @Test("a stored event whose data is not JSON reads as corrupted, though events are not decoded on read")
    func corruptedEvent() async throws {
        let path = temporaryDatabasePath()
        let storage = try SQLiteSessionStorage(configuration: .init(path: path))
        let id = try await storage.createSession().id
        let event = try await storage.appendEvent(NewEvent(stream: .standalone, data: ["n": 1]), to: id)
        try sqlite3(path, "UPDATE session_events SET data = X'7B226E223A7D' WHERE id = \(event.id)")  // {"n":}
        await #expect { try await storage.event(event.id, in: id) } throws: { error in
            (error as? SessionStorageError)?.code == .corrupted
        }
        await #expect { try await storage.recentEvents(in: id, limit: 5) } throws: { error in
            (error as? SessionStorageError)?.code == .corrupted
        }
    }

    @Test("a database from a newer schema is refused with a clear error")
    func newerSchema() async throws {
        let path = temporaryDatabasePath()
        _ = try SQLiteSessionStorage(configuration: .init(path: path))
        try sqlite3(path, "INSERT INTO grdb_migrations (identifier) VALUES ('v999-from-the-future')")
        #expect { try SQLiteSessionStorage(configuration: .init(path: path)) } throws: { error in
            (error as? SessionStorageError)?.code == .corrupted && "\(error)".contains("newer schema")
        }
    }

    @Test("FULL synchronous mode works the same")
    func fullSync() async throws {
        var configuration = SQLiteSessionStorage.Configuration(path: temporaryDatabasePath())
        configuration.synchronous = .full
        let storage = try SQLiteSessionStorage(configuration: configuration)
        let id = try await storage.createSession().id
        #expect(try await storage.setState(true, forKey: "k", in: id) == 2)
    }
}

/// Runs SQL with the sqlite3 command-line shell, as an operator (or a bug) would.
func sqlite3(_ path: String, _ sql: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    process.arguments = [path, sql]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw SessionStorageError(.unavailable, "sqlite3 exited \(process.terminationStatus)") }
}

@Suite("Tiered over SQLite")
struct TieredSQLiteConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in
            TieredSessionStorage(durable: try SQLiteSessionStorage(configuration: .init(path: temporaryDatabasePath(), policy: policy)))
        }
    }
}
