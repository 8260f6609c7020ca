import Benchmark
import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import Synchronization

/// PostgreSQL at 1 and 16 concurrent callers. Each benchmark gets its own schema
/// (`bench_<operation>_c<callers>`), and caller k works on session "k", so `scripts/bench` can
/// point pgbench at the same rows (`:client_id`) with the same SQL.
func registerPostgres() {
    let url = ProcessInfo.processInfo.environment["MCP_POSTGRES_URL"] ?? "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions"
    for callers in [1, 16] {
        for operation in Operation.allCases {
            let schema = "bench_\(operation.rawValue.replacingOccurrences(of: "-", with: "_"))_c\(callers)"
            Benchmark(
                "PostgreSQL \(operation.rawValue) c\(callers)",
                closure: { benchmark, fixtures in
                    try await run(operation, on: fixtures, callers: callers, total: benchmark.scaledIterations.count)
                },
                setup: {
                    let storage = try await PostgresBench.storage(url: url, schema: schema, connections: callers)
                    return try await (0..<callers).asyncMap { try await Fixture.make(storage, id: try SessionID(validating: "\($0)")) }
                })
        }
    }
}

enum Operation: String, CaseIterable {
    case getSession = "get-session"
    case setState = "set-state"
    case appendEvent = "append-event"
    case replay = "replay-100"
}

/// Runs `total` operations split over `fixtures.count` concurrent callers, each on its own session;
/// with `executors`, caller k runs on executor k (modulo their count).
func run(_ operation: Operation, on fixtures: [Fixture], callers: Int, total: Int, executors: [any TaskExecutor]? = nil) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for (caller, fixture) in fixtures.enumerated() {
            let count = total / callers + (caller < total % callers ? 1 : 0)
            group.addTask(executorPreference: executors.map { $0[caller % $0.count] }) { try await fixture.perform(operation, times: count) }
        }
        try await group.waitForAll()
    }
}

enum PostgresBench {
    /// A storage on a freshly emptied schema, its client running for the rest of the process.
    static func storage(url: String, schema: String, connections: Int, changes: ChangeEmitter? = nil) async throws -> PostgresSessionStorage {
        var configuration = try PostgresSessionStorage.Configuration(url: url)
        configuration.tls = .disable
        configuration.schema = schema
        configuration.minimumConnections = connections
        configuration.maximumConnections = connections
        let storage = try PostgresSessionStorage(configuration: configuration, changes: changes)
        Background.run("PostgresSessionStorage.run (\(schema))") { await storage.run() }
        try await storage.client.query("DROP SCHEMA IF EXISTS \(unescaped: schema) CASCADE")
        return storage
    }
}

/// The clients and buses a benchmark starts, stopped after it (`Benchmark.teardown`) so that
/// their connections and listeners do not weigh on the benchmarks that follow.
enum Background {
    private static let tasks = Mutex<[(name: String, task: Task<Void, Never>)]>([])

    static func run(_ name: String, _ body: @escaping @Sendable () async -> Void) {
        tasks.withLock { $0.append((name, Task { await body() })) }
    }

    static func stopAll() async {
        let running = tasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        for (_, task) in running { task.cancel() }
        // Each gets 5 s to close its connections; one that does not is reported and left, so
        // that the run still ends.
        for (name, task) in running {
            let stopped = Flag()
            Task {
                await task.value
                stopped.set()
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while !stopped.isSet, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
            if !stopped.isSet { FileHandle.standardError.write(Data("warning: \(name) did not stop within 5 s of cancellation\n".utf8)) }
        }
    }

    private final class Flag: Sendable {
        private let value = Atomic(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
        func set() { value.store(true, ordering: .releasing) }
    }
}

extension Sequence where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
