import Benchmark
import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres

/// PostgreSQL at 1 and 16 concurrent callers. Each benchmark gets its own schema
/// (`bench_<operation>_c<callers>`), and caller k works on session "k", so `scripts/bench` can
/// point pgbench at the same rows (`:client_id`) with the same SQL.
func registerPostgres() {
    let url = ProcessInfo.processInfo.environment["MCP_POSTGRES_URL"] ?? "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions"
    for callers in [1, 16] {
        for operation in Operation.allCases {
            let schema = "bench_\(operation.rawValue.replacingOccurrences(of: "-", with: "_"))_c\(callers)"
            Benchmark("PostgreSQL \(operation.rawValue) c\(callers)", closure: { benchmark, fixtures in
                try await run(operation, on: fixtures, callers: callers, total: benchmark.scaledIterations.count)
            }, setup: {
                let storage = try await PostgresBench.storage(url: url, schema: schema, connections: callers)
                return try await (0..<callers).asyncMap { try await Fixture.make(storage, id: try SessionID(validating: "\($0)")) }
            })
        }
    }
}

enum Operation: String, CaseIterable {
    case getSession = "get-session", setState = "set-state", appendEvent = "append-event", replay = "replay-100"
}

/// Runs `total` operations split over `fixtures.count` concurrent callers, each on its own session.
func run(_ operation: Operation, on fixtures: [Fixture], callers: Int, total: Int) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (caller, fixture) in fixtures.enumerated() {
            let count = total / callers + (caller < total % callers ? 1 : 0)
            group.addTask { try await fixture.perform(operation, times: count) }
        }
        try await group.waitForAll()
    }
}

enum PostgresBench {
    /// A storage on a freshly emptied schema, its client running for the rest of the process.
    static func storage(url: String, schema: String, connections: Int) async throws -> PostgresSessionStorage {
        var configuration = try PostgresSessionStorage.Configuration(url: url)
        configuration.tls = .disable
        configuration.schema = schema
        configuration.minimumConnections = connections
        configuration.maximumConnections = connections
        let storage = try PostgresSessionStorage(configuration: configuration)
        Task { await storage.run() }
        try await storage.client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
        return storage
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
