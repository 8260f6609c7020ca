import ArgumentParser
import Hummingbird
import Logging
import MCPSessionServer
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageSQLite
import ServiceLifecycle

/// `mcp-session-server`: the demo MCP server over any storage stack.
@main
struct MCPSessionServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-session-server",
        abstract: "An MCP server (Streamable HTTP on /mcp) that keeps its sessions in durable storage.",
        discussion: "Tools: state_set, state_get, ticker. Several instances sharing one PostgreSQL database serve any session.")

    enum CacheMode: String, ExpressibleByArgument, CaseIterable {
        case lru, none
    }

    enum ConsistencyMode: String, ExpressibleByArgument, CaseIterable {
        case readYourWrites = "read-your-writes"
        case eventual
    }

    @Option(help: "The address to listen on; keep loopback unless a proxy in front checks origins.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 8080

    @Option(
        help:
            "memory: | sqlite:PATH | postgres://USER[:PASS]@HOST[:PORT]/DB | redis://[:PASS@]HOST[:PORT][/DB] (redis+cluster://, or several HOST:PORT, for Redis Cluster) | dynamodb://TABLE?region=REGION[&endpoint=URL][&create=false] (creates a missing table unless create=false)"
    )
    var storage = "sqlite:mcp_sessions.db"

    @Option(help: "An in-process LRU front over the storage (lru), or none.")
    var cache: CacheMode = .lru

    @Option(help: "Sessions the front holds at most (default 10000).")
    var cacheMaxEntries: Int?

    @Option(help: "Bytes the front holds at most (default 67108864, 64 MiB).")
    var cacheMaxBytes: Int?

    @Option(
        help:
            "With a bus: read-your-writes (each request confirms the front's copy with one small batched read, so it sees every write acknowledged before it, on any instance) or eventual (no read; another instance's write is seen once its message arrives)."
    )
    var consistency: ConsistencyMode = .readYourWrites

    @Option(
        help:
            "auto | none | postgres://… | redis://…: where instances tell each other what changed (auto: the storage's own database when it is PostgreSQL or Redis, each change sent inside its write)."
    )
    var bus = "auto"

    @Option(
        help:
            "Milliseconds between change messages sent after writes (default: 0 with --bus auto, every message inside its write; 10 with a bus URL).")
    var busGap: Int?

    @Option(name: .customLong("session-ttl"), help: "Seconds a session may stay idle before it expires.")
    var sessionTTL = 1800

    @Option(
        help:
            "Seconds a connection has to send a request's headers (from opening, or from its previous response's end); also the longest pause inside a request body. Slower connections are closed."
    )
    var headerTimeout = 10

    @Option(help: "Connections open at once; past it new ones wait until one closes (default: the open-file limit less 128, between 16 and 10000).")
    var maxConnections: Int?

    func validate() throws {
        _ = try StorageSpec(parsing: storage)
        _ = try BusSpec(parsing: bus)
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be 0–65535") }
        if let busGap, busGap < 0 { throw ValidationError("--bus-gap must not be negative") }
        guard sessionTTL > 0 else { throw ValidationError("--session-ttl must be positive") }
        guard headerTimeout > 0 else { throw ValidationError("--header-timeout must be positive") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        if let cacheMaxEntries, cacheMaxEntries < 1 { throw ValidationError("--cache-max-entries must be at least 1") }
        if let cacheMaxBytes, cacheMaxBytes < 1 { throw ValidationError("--cache-max-bytes must be at least 1") }
    }

    func run() async throws {
        MemoryPolicy.apply()
        var logger = Logger(label: "mcp-session-server")
        logger.logLevel = .info
        let stack = try StorageStack(
            storage: try StorageSpec(parsing: storage), bus: try BusSpec(parsing: bus), busGap: busGap.map { .milliseconds($0) },
            cache: cache == .lru,
            maxEntries: cacheMaxEntries, maxBytes: cacheMaxBytes, consistency: consistency == .eventual ? .eventual : .readYourWrites,
            sessionTTL: .seconds(sessionTTL), logger: logger)

        let serverConfiguration = MCPServer.Configuration()
        let server = MCPServer(stack: stack.stack, configuration: serverConfiguration, logger: logger)
        server.register(DemoTools.all)

        let router = Router()
        server.addRoutes(to: router)
        let connections = ConnectionLimit(maximum: maxConnections ?? ConnectionLimit.defaultMaximum, logger: logger)
        let app = Application(
            router: router, server: .mcp(headerTimeout: .seconds(headerTimeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: "mcp-session-server", availableConnectionsDelegate: connections),
            onServerRunning: { [logger, path = serverConfiguration.path, headerTimeout] channel in
                logger.info(
                    "listening",
                    metadata: [
                        "address": "http://\(channel.localAddress?.ipAddress ?? host):\(channel.localAddress?.port ?? port)\(path)",
                        "storage": "\(stack.description)",
                        "max-connections": "\(connections.maximum)", "header-timeout": "\(headerTimeout)s",
                    ])
            },
            logger: logger)
        // Shutdown runs in reverse: the server closes its streams before the HTTP server drains,
        // and storage stops last.
        let group = ServiceGroup(
            services: stack.stack.services + [app, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: lifecycleLogger(logger))
        try await group.run()
        logger.info("stopped")
    }

    /// The service group's logger: its account of the signal caught and of each service as it
    /// stops is what an operator reads at shutdown, so it logs at debug level, as `lifecycle`.
    func lifecycleLogger(_ logger: Logger) -> Logger {
        var lifecycle = Logger(label: "mcp-session-server.lifecycle")
        lifecycle.logLevel = logger.logLevel == .trace ? .trace : .debug
        return lifecycle
    }
}
