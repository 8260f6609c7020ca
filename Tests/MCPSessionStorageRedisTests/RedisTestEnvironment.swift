import Foundation
import MCPSessionStorage
import MCPSessionStorageRedis
import MCPSessionStorageTesting
import Synchronization
import Testing

/// The Redis servers `scripts/services` starts, and storages under fresh key prefixes.
enum RedisTestEnvironment {
    static let redis = ServiceEnvironment(name: "Redis", variable: "MCP_REDIS_URL", default: "redis://127.0.0.1:63790")
    /// The second server, which the fault tests stop, kill and start.
    static let faults = ServiceEnvironment(name: "Redis (faults)", variable: "MCP_REDIS_FAULTS_URL", default: "redis://127.0.0.1:63791")
    /// A cluster of three primaries.
    static let cluster = ServiceEnvironment(
        name: "Redis Cluster", variable: "MCP_REDIS_CLUSTER_URL", default: "redis+cluster://127.0.0.1:63800,127.0.0.1:63801,127.0.0.1:63802")
    static let skipReason = Comment(rawValue: redis.skipReason)

    private static let running = Mutex<[Task<Void, Never>]>([])
    private static let runPrefix = "t\(getpid())_"

    static func freshPrefix() -> String {
        runPrefix + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// A storage under a key prefix no other test uses.
    static func storage(
        policy: SessionPolicy = SessionPolicy(), prefix: String? = nil, url: String = redis.url, changes: ChangeEmitter? = nil,
        configure: (inout RedisSessionStorage.Configuration) -> Void = { _ in }
    ) throws -> RedisSessionStorage {
        var configuration = try RedisSessionStorage.Configuration(url: url)
        configuration.keyPrefix = prefix ?? freshPrefix()
        configuration.policy = policy
        configure(&configuration)
        return try RedisSessionStorage(configuration: configuration, changes: changes)
    }

    /// Runs `work` in the background for the rest of the test process.
    static func keepRunning(_ work: @escaping @Sendable () async -> Void) {
        running.withLock { $0.append(Task { await work() }) }
    }

    /// The project's `scripts/services`, found from this file's path.
    static let servicesScript = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/services").path

    /// Runs `scripts/services COMMAND NAME` and waits for it.
    static func services(_ command: String, _ name: String) async throws {
        try await run("/bin/bash", [servicesScript, command, name])
    }

    /// Runs `redis-cli` against `port` with `arguments`; returns what it printed.
    @discardableResult
    static func cli(_ port: Int, _ arguments: [String]) async throws -> String {
        try await run("/usr/bin/redis-cli", ["-p", String(port)] + arguments)
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        try await onThreadOfItsOwn { try runBlocking(executable, arguments) }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SessionStorageError(.unavailable, "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return text
    }
}

/// A value shared between a test and the tasks it starts (`Mutex` alone cannot be captured by an
/// escaping closure).
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) -> sending R) -> sending R { value.withLock(body) }
    var current: Value { value.withLock { $0 } }
}
