import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageTesting
import Testing

@Suite("PostgresSessionStorage", .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct PostgresConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in try await PostgresTestEnvironment.migratedStorage(policy: policy) }
    }

    @Test("two storages with separate clients write one session concurrently and lose nothing")
    func twoClients() async throws {
        let schema = PostgresTestEnvironment.freshSchema()
        let first = try PostgresTestEnvironment.storage(schema: schema)
        let second = try PostgresTestEnvironment.storage(schema: schema)
        let id = try await first.createSession().id
        let ids = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for (index, storage) in [first, second].enumerated() {
                group.addTask {
                    var ids: [Int64] = []
                    for n in 0..<30 {
                        try await storage.setState(.int(Int64(n)), forKey: "s\(index)-\(n)", in: id)
                        ids.append(try await storage.appendEvent(NewEvent(stream: .standalone, data: .int(Int64(n))), to: id).id)
                    }
                    return ids
                }
            }
            return try await group.reduce(into: [[Int64]]()) { $0.append($1) }
        }
        for writer in ids { #expect(zip(writer, writer.dropFirst()).allSatisfy { $0 < $1 }) }
        #expect(Set(ids.joined()).count == 60)
        let session = try #require(try await second.session(id))
        #expect(session.state.count == 60)
        #expect(session.version == 61)
        #expect(try await first.recentEvents(in: id, limit: 100).map(\.id) == ids.joined().sorted())
    }

    @Test("three instances migrating one schema at once all succeed, once")
    func concurrentMigrations() async throws {
        let schema = PostgresTestEnvironment.freshSchema()
        let storages = try (0..<3).map { _ in try PostgresTestEnvironment.storage(schema: schema) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for storage in storages { group.addTask { _ = try await storage.sessionCount() } }
            try await group.waitForAll()
        }
        let rows = try await storages[0].client.query("SELECT count(*), max(version) FROM \(unescaped: schema).mcp_session_schema")
        for try await (count, version) in rows.decode((Int64, Int32).self) {
            #expect(count == 1)
            #expect(version == 2)  // the release's migrations: the tables, then the leases
        }
    }

    @Test("state limits past PostgreSQL's integer sizes are refused when the storage is made, not trapped on later")
    func limitsFitInt4() throws {
        for policy in [SessionPolicy(maxStateBytesPerSession: 3 << 30), SessionPolicy(maxStateValueBytes: Int(Int32.max))] {
            #expect(throws: SessionStorageError.self) { try PostgresTestEnvironment.storage(policy: policy) }
        }
    }

    // Issue 14: this test used to require `invalidInput` here, which no other backend answers;
    // the conformance check on U+0000 holds every backend to storing it.
    @Test("a NUL character, which jsonb cannot hold, is stored escaped and reads back exactly")
    func nulInJSON() async throws {
        let storage = try PostgresTestEnvironment.storage()
        let id = try await storage.createSession(NewSession(state: ["k": "kept"])).id
        #expect(try await storage.setState("a\u{0}b", forKey: "k", in: id) == 2)
        let session = try #require(try await storage.session(id))
        #expect(session.state == ["k": "a\u{0}b"])
        #expect(session.version == 2)
        // In the jsonb column, U+0000 is U+FDD0 (a noncharacter, which Swift literals cannot spell) then "0".
        let schema = storage.configuration.schema
        let rows = try await storage.client.query("SELECT state ->> 'k' FROM \(unescaped: schema).mcp_sessions WHERE id = \(id.rawValue)")
        for try await stored in rows.decode(String.self) { #expect(stored == "a" + String(decoding: [0xEF, 0xB7, 0x90], as: UTF8.self) + "0b") }
        // Events are stored as JSON text, where NUL is an escape and fine.
        let event = try await storage.appendEvent(NewEvent(stream: .standalone, data: "a\u{0}b"), to: id)
        #expect(try await storage.recentEvents(in: id, limit: 1).first?.data == "a\u{0}b")
        #expect(event.data == "a\u{0}b")
    }

    @Test("a URL with an unknown parameter or scheme is invalidInput")
    func badURL() {
        for url in ["mysql://u@h/db", "postgres://h/db", "postgres://u@h/db?sslmode=maybe", "not a url"] {
            #expect(throws: SessionStorageError.self) { try PostgresSessionStorage.Configuration(url: url) }
        }
        #expect(throws: SessionStorageError.self) {
            var configuration = try PostgresSessionStorage.Configuration(url: "postgres://u@h/db")
            configuration.schema = "x; DROP TABLE y"
            _ = try PostgresSessionStorage(configuration: configuration)
        }
    }
}
