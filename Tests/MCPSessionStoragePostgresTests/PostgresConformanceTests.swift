import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageTesting
import Testing

@Suite("PostgresSessionStorage", .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct PostgresConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { limits in try PostgresTestEnvironment.storage(limits: limits) }
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

    @Test("concurrent state writes share batches: every write lands once, and a refused one fails alone", arguments: [false, true])
    func batchedStateWrites(notifying: Bool) async throws {
        var limits = SessionLimits()
        limits.maxStateBytesPerSession = 200
        let storage = try PostgresTestEnvironment.storage(limits: limits)
        // An attached bus makes every write, batched ones too, carry its NOTIFY.
        let bus = notifying ? try PostgresChangeBus(attachedTo: storage) : nil
        defer { withExtendedLifetime(bus) {} }
        let sessions = try await (0..<8).asyncMap { _ in try await storage.createSession().id }
        let full = try await storage.createSession().id
        _ = try await storage.setState(.string(String(repeating: "x", count: 180)), forKey: "big", in: full)
        let missing = SessionID.generate()
        // 8 sessions × 6 writes, plus a full session and a missing one, all at once: batches
        // form, holding each session at most once, with the two refusals among the rest.
        let outcomes = await withTaskGroup(of: (SessionID, String, Result<Int64, SessionStorageError>).self) { group in
            for round in 0..<6 {
                for id in sessions + [full, missing] {
                    group.addTask {
                        let key = "k\(round)"
                        do throws(SessionStorageError) {
                            return (id, key, .success(try await storage.setState(.string(String(repeating: "v", count: 20)), forKey: key, in: id)))
                        } catch {
                            return (id, key, .failure(error))
                        }
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for id in sessions {
            let versions = outcomes.filter { $0.0 == id }.compactMap { try? $0.2.get() }
            #expect(Set(versions) == Set(2...7), "each write of \(id) raised the version once")
            let session = try #require(try await storage.session(id))
            #expect(session.state.keys.sorted() == (0..<6).map { "k\($0)" })
            #expect(session.version == 7)
        }
        for (id, code) in [(full, SessionStorageError.Code.limitExceeded), (missing, .sessionNotFound)] {
            let failures = outcomes.filter { $0.0 == id }.compactMap { if case .failure(let error) = $0.2 { error.code } else { nil } }
            #expect(failures == Array(repeating: code, count: 6))
        }
        #expect(try await storage.session(full)?.state.keys.sorted() == ["big"])
    }

    @Test("concurrent appends share batches: ids rise per session, optional fields survive, retention holds", arguments: [false, true])
    func batchedAppends(notifying: Bool) async throws {
        var limits = SessionLimits()
        limits.maxEventsPerSession = 4
        let storage = try PostgresTestEnvironment.storage(limits: limits)
        let bus = notifying ? try PostgresChangeBus(attachedTo: storage) : nil
        defer { withExtendedLifetime(bus) {} }
        let sessions = try await (0..<8).asyncMap { _ in try await storage.createSession().id }
        let missing = SessionID.generate()
        // Every third event has no data, every other one a type, every fourth a retry.
        func event(_ n: Int) -> NewEvent {
            NewEvent(stream: .standalone, type: n % 2 == 0 ? "message" : nil, data: n % 3 == 0 ? nil : .int(Int64(n)), retryMilliseconds: n % 4 == 0 ? 500 : nil)
        }
        let outcomes = await withTaskGroup(of: (SessionID, Int, Result<SSEEvent, SessionStorageError>).self) { group in
            for n in 0..<6 {
                for id in sessions + [missing] {
                    group.addTask {
                        do throws(SessionStorageError) {
                            return (id, n, .success(try await storage.appendEvent(event(n), to: id)))
                        } catch {
                            return (id, n, .failure(error))
                        }
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for id in sessions {
            let appended = outcomes.filter { $0.0 == id }.compactMap { outcome in (try? outcome.2.get()).map { (outcome.1, $0) } }
            #expect(Set(appended.map(\.1.id)) == Set(1...6), "ids of \(id)")
            let kept = try await storage.recentEvents(in: id, limit: 10)
            #expect(kept.map(\.id) == [3, 4, 5, 6], "retention of \(id)")
            for stored in kept {
                let n = try #require(appended.first { $0.1.id == stored.id }?.0)
                #expect((stored.type, stored.data, stored.retryMilliseconds) == (event(n).type, event(n).data, event(n).retryMilliseconds))
            }
        }
        let failures = outcomes.filter { $0.0 == missing }.compactMap { if case .failure(let error) = $0.2 { error.code } else { nil } }
        #expect(failures == Array(repeating: .sessionNotFound, count: 6))
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
            #expect(version == 1)
        }
    }

    @Test("a NUL character, which jsonb cannot hold, is invalidInput and writes nothing")
    func nulInJSON() async throws {
        let storage = try PostgresTestEnvironment.storage()
        let id = try await storage.createSession(NewSession(state: ["k": "kept"])).id
        await #expect { try await storage.setState("a\u{0}b", forKey: "k", in: id) } throws: {
            ($0 as? SessionStorageError)?.code == .invalidInput
        }
        let session = try #require(try await storage.session(id))
        #expect(session.state == ["k": "kept"])
        #expect(session.version == 1)
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

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
