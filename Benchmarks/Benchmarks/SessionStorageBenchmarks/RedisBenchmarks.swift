import Benchmark
import Foundation
import MCPSessionStorage
@_spi(Benchmark) import MCPSessionStorageRedis
import NIOCore
import NIOPosix

/// Redis at 1 and 16 concurrent callers, and the tier over Redis with its bus. Each benchmark
/// gets its own key prefix (`bench_<operation>_c<callers>`), and caller k works on session "k",
/// so `scripts/bench` can point redis-benchmark at the same keys with the same `EVALSHA`.
func registerRedis() {
    let url = ProcessInfo.processInfo.environment["MCP_REDIS_URL"] ?? "redis://127.0.0.1:63790"
    // Get and set also with each caller on one of NIO's event loops, where the storage keeps a
    // connection: what callers already on the loops get.
    let loops = MultiThreadedEventLoopGroup.singleton.makeIterator().map { EventLoopExecutor($0) as any TaskExecutor }
    for callers in [1, 16] {
        for operation in Operation.allCases {
            let placements: [[any TaskExecutor]?] = [.getSession, .setState].contains(operation) ? [nil, loops] : [nil]
            for executors in placements {
                let prefix = "bench_\(operation.rawValue.replacingOccurrences(of: "-", with: "_"))_c\(callers)" + (executors == nil ? "" : "_loops")
                Benchmark(
                    "Redis \(operation.rawValue) c\(callers)" + (executors == nil ? "" : " on the loops"),
                    closure: { benchmark, fixtures in
                        try await run(operation, on: fixtures, callers: callers, total: benchmark.scaledIterations.count, executors: executors)
                    },
                    setup: {
                        let storage = try await RedisBench.storage(url: url, prefix: prefix)
                        return try await (0..<callers).asyncMap { try await Fixture.make(storage, id: try SessionID(validating: "\($0)")) }
                    })
            }
        }
    }

    // The bus: PUBLISH inside each write's script, against the same write on the bare storage.
    Benchmark(
        "Tiered Redis set-state c1 bare storage (reference)",
        closure: { benchmark, fixture in try await fixture.perform(.setState, times: benchmark.scaledIterations.count) },
        setup: { try await Fixture.make(try await RedisBench.storage(url: url, prefix: "bench_tiered_redis_bare")) })
    Benchmark(
        "Tiered Redis set-state c1",
        closure: { benchmark, fixture in try await fixture.perform(.setState, times: benchmark.scaledIterations.count) },
        setup: {
            let changes = try ChangeEmitter(channel: "bench_tiered_redis")
            let durable = try await RedisBench.storage(url: url, prefix: "bench_tiered_redis", changes: changes)
            let bus = try RedisChangeBus(configuration: durable.configuration, changes: changes)
            Background.run("RedisChangeBus.run (bench_tiered_redis)") { await bus.run() }
            let tiered = TieredSessionStorage(durable: durable, bus: bus)
            while !tiered.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
            return try await Fixture.make(tiered)
        })
}

enum RedisBench {
    /// A storage under a key prefix emptied of earlier runs' sessions.
    static func storage(url: String, prefix: String, changes: ChangeEmitter? = nil) async throws -> RedisSessionStorage {
        var configuration = try RedisSessionStorage.Configuration(url: url)
        configuration.keyPrefix = prefix
        let storage = try RedisSessionStorage(configuration: configuration, changes: changes)
        Background.run("RedisSessionStorage.run (\(prefix))") { await storage.run() }
        for id in try await storage.allSessionIDs() { try await storage.deleteSession(id) }
        return storage
    }
}
