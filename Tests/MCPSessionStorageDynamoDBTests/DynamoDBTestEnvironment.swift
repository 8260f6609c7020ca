import Foundation
import MCPSessionStorage
import MCPSessionStorageDynamoDB
import MCPSessionStorageTesting
import Synchronization
import Testing

/// The moto servers `scripts/services` starts, and storages on fresh tables.
enum DynamoDBTestEnvironment {
    static let dynamo = ServiceEnvironment(name: "DynamoDB (moto)", variable: "MCP_DYNAMODB_URL", default: "http://127.0.0.1:63900")
    /// The second server, which the outage test stops and starts.
    static let faults = ServiceEnvironment(name: "DynamoDB (faults)", variable: "MCP_DYNAMODB_FAULTS_URL", default: "http://127.0.0.1:63901")
    static let redis = ServiceEnvironment(name: "Redis", variable: "MCP_REDIS_URL", default: "redis://127.0.0.1:63790")
    static let skipReason = Comment(rawValue: dynamo.skipReason)
    /// moto takes any key; these are never used against AWS.
    static let credentials = AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")

    private static let running = Mutex<[Task<Void, Never>]>([])
    private static let runPrefix = "t\(getpid())-"

    /// A table name no other test uses: each storage the suite makes gets its own table.
    static func freshTable() -> String {
        runPrefix + UUID().uuidString.prefix(13).lowercased()
    }

    /// A bus channel of the table's own (channels are lowercase letters, digits and `_`).
    static func channel(for table: String) -> String {
        "dyn_" + table.replacingOccurrences(of: "-", with: "_")
    }

    /// A storage on a fresh table (created on first use) of the server at `endpoint`.
    static func storage(
        policy: SessionPolicy = SessionPolicy(), table: String? = nil, endpoint: String = dynamo.url,
        configure: (inout DynamoDBSessionStorage.Configuration) -> Void = { _ in }
    ) throws -> DynamoDBSessionStorage {
        var configuration = DynamoDBSessionStorage.Configuration(table: table ?? freshTable(), region: "us-east-1", endpoint: endpoint)
        configuration.credentials = .fixed(credentials)
        configuration.createTable = true
        configuration.policy = policy
        // The suite runs many checks at once against one Python process: generous, not a hang.
        configuration.operationTimeout = .seconds(60)
        configure(&configuration)
        return try DynamoDBSessionStorage(configuration: configuration)
    }

    /// Runs `work` in the background for the rest of the test process.
    static func keepRunning(_ work: @escaping @Sendable () async -> Void) {
        running.withLock { $0.append(Task { await work() }) }
    }

    /// The project's root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `scripts/services COMMAND NAME` and waits for it, asleep (not blocking a thread).
    static func services(_ command: String, _ name: String) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [root.appendingPathComponent("scripts/services").path, command, name]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard process.terminationStatus == 0 else {
            throw SessionStorageError(.unavailable, "scripts/services \(command) \(name) exited \(process.terminationStatus)")
        }
    }
}
