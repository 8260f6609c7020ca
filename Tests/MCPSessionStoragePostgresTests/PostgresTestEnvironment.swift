import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageTesting
import Synchronization
import Testing

/// The PostgreSQL servers `scripts/services` starts, and storages on fresh schemas.
///
/// Outside CI, tests skip (with the reason) when the server is not reachable; under `CI=true`
/// they run anyway and fail, so a missing service never passes silently.
enum PostgresTestEnvironment {
    static let postgres = ServiceEnvironment(
        name: "PostgreSQL", variable: "MCP_POSTGRES_URL", default: "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions")
    /// The second server, which the outage tests stop and start.
    static let faults = ServiceEnvironment(
        name: "PostgreSQL (faults)", variable: "MCP_POSTGRES_FAULTS_URL", default: "postgres://mcp:mcp@127.0.0.1:54330/mcp_sessions")
    static let url = postgres.url
    static let faultsURL = faults.url
    static let shouldRun = postgres.shouldRun
    static let skipReason = Comment(rawValue: postgres.skipReason)

    /// The project's `scripts/services`, found from this file's path.
    static let servicesScript = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/services").path

    private static let running = Mutex<[Task<Void, Never>]>([])
    private static let runPrefix = "t\(getpid())_"

    /// A storage on a schema no other test uses, its client running for the rest of the process.
    static func storage(
        policy: SessionPolicy = SessionPolicy(), schema: String? = nil, url: String = url, changes: ChangeEmitter? = nil,
        configure: (inout PostgresSessionStorage.Configuration) -> Void = { _ in }
    ) throws -> PostgresSessionStorage {
        var configuration = try PostgresSessionStorage.Configuration(url: url)
        configuration.tls = .disable
        configuration.schema = schema ?? freshSchema()
        configuration.policy = policy
        // Dozens of checks run at once, each with its own pool: keep each small.
        configuration.maximumConnections = 4
        configure(&configuration)
        let storage = try PostgresSessionStorage(configuration: configuration, changes: changes)
        keepRunning { await storage.run() }
        return storage
    }

    /// A storage as `storage(...)` makes it, after its first call (connect, migrate) has run in
    /// its turn: see `FirstCalls`. For the conformance checks, which start by the hundred.
    static func migratedStorage(
        policy: SessionPolicy = SessionPolicy(), schema: String? = nil, changes: ChangeEmitter? = nil
    ) async throws -> PostgresSessionStorage {
        let storage = try storage(policy: policy, schema: schema, changes: changes)
        _ = try await firstCalls.run { try await storage.sessionCount() }
        return storage
    }

    private static let firstCalls = FirstCalls(permits: 4)

    /// Runs `work` in the background for the rest of the test process.
    static func keepRunning(_ work: @escaping @Sendable () async -> Void) {
        running.withLock { $0.append(Task { await work() }) }
    }

    static func freshSchema() -> String {
        runPrefix + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// Runs `scripts/services COMMAND NAME` and waits for it.
    static func services(_ command: String, _ name: String) async throws {
        try await onThreadOfItsOwn { try servicesBlocking(command, name) }
    }

    private static func servicesBlocking(_ command: String, _ name: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [servicesScript, command, name]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SessionStorageError(.unavailable, "scripts/services \(command) \(name) exited \(process.terminationStatus)")
        }
    }
}
