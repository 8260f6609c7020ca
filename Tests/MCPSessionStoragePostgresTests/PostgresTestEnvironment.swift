import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import Synchronization
import Testing

/// The PostgreSQL servers `scripts/services` starts, and storages on fresh schemas.
///
/// Outside CI, tests skip (with the reason) when the server is not reachable; under `CI=true`
/// they run anyway and fail, so a missing service never passes silently.
enum PostgresTestEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let url = environment["MCP_POSTGRES_URL"] ?? "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions"
    static let faultsURL = environment["MCP_POSTGRES_FAULTS_URL"] ?? "postgres://mcp:mcp@127.0.0.1:54330/mcp_sessions"
    static let isCI = environment["CI"] == "true"
    static let shouldRun = isCI || reachable(url)
    static let skipReason: Comment = "PostgreSQL is not reachable at \(url); run scripts/services start (under CI=true this fails instead)"

    /// The project's `scripts/services`, found from this file's path.
    static let servicesScript = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/services").path

    private static let running = Mutex<[Task<Void, Never>]>([])
    private static let runPrefix = "t\(getpid())_"

    /// A storage on a schema no other test uses, its client running for the rest of the process.
    static func storage(
        limits: SessionLimits = SessionLimits(), schema: String? = nil, url: String = url,
        configure: (inout PostgresSessionStorage.Configuration) -> Void = { _ in }
    ) throws -> PostgresSessionStorage {
        var configuration = try PostgresSessionStorage.Configuration(url: url)
        configuration.tls = .disable
        configuration.schema = schema ?? freshSchema()
        configuration.limits = limits
        // Dozens of checks run at once, each with its own pool: keep each small.
        configuration.maximumConnections = 4
        configure(&configuration)
        let storage = try PostgresSessionStorage(configuration: configuration)
        keepRunning { await storage.run() }
        return storage
    }

    /// Runs `work` in the background for the rest of the test process.
    static func keepRunning(_ work: @escaping @Sendable () async -> Void) {
        running.withLock { $0.append(Task { await work() }) }
    }

    static func freshSchema() -> String {
        runPrefix + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// Runs `scripts/services COMMAND NAME` and waits for it.
    static func services(_ command: String, _ name: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [servicesScript, command, name]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SessionStorageError(.unavailable, "scripts/services \(command) \(name) exited \(process.terminationStatus)")
        }
    }

    /// Whether a TCP connection to the URL's host and port succeeds.
    static func reachable(_ text: String) -> Bool {
        guard let components = URLComponents(string: text), let host = components.host else { return false }
        let port = components.port ?? 5432
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
