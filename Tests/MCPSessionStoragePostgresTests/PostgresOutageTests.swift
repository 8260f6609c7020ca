import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import Testing

/// Stops and starts the separate `postgres-faults` server, so other tests keep their database.
@Suite(
    "PostgreSQL outage", .serialized,
    .enabled(if: PostgresTestEnvironment.faults.shouldRun, Comment(rawValue: PostgresTestEnvironment.faults.skipReason)))
struct PostgresOutageTests {
    @Test("calls fail promptly with unavailable while the server is down, and the same storage heals")
    func outage() async throws {
        // Set up with the default timeout: under a loaded test run, migrating and connecting
        // can take longer than the short timeout the outage checks use.
        let schema = PostgresTestEnvironment.freshSchema()
        let setup = try PostgresTestEnvironment.storage(schema: schema, url: PostgresTestEnvironment.faultsURL)
        let id = try await setup.createSession(NewSession(state: ["before": true])).id
        let timeout = Duration.seconds(2)
        let storage = try PostgresTestEnvironment.storage(schema: schema, url: PostgresTestEnvironment.faultsURL) {
            $0.operationTimeout = timeout
            $0.connectTimeout = .seconds(1)
        }
        var warm = false
        for _ in 0..<20 where !warm { warm = (try? await storage.session(id)) != nil }
        try #require(warm, "the storage never reached the server before the outage")

        try await PostgresTestEnvironment.services("stop", "postgres-faults")
        do {
            for _ in 0..<3 {
                let clock = ContinuousClock()
                let started = clock.now
                await #expect { try await storage.session(id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
                await #expect { try await storage.setState(1, forKey: "during", in: id) } throws: {
                    ($0 as? SessionStorageError)?.code == .unavailable
                }
                // Two calls, each bounded by the operation timeout (plus scheduling slack).
                #expect(clock.now - started < timeout * 2 + .seconds(2), "a call hung past the operation timeout")
            }
        }
        try await PostgresTestEnvironment.services("start", "postgres-faults")

        var healed: SessionInfo?
        for _ in 0..<60 where healed == nil {
            healed = try? await storage.session(id)
            if healed == nil { try await Task.sleep(for: .milliseconds(500)) }
        }
        let session = try #require(healed, "the storage did not recover after the server came back")
        #expect(session.state == ["before": true])
        try await storage.setState(2, forKey: "after", in: id)
        #expect(try await storage.stateValue(forKey: "after", in: id) == 2)
    }
}
