import ArgumentParser
import Foundation
import Hummingbird
import Logging
import MCPSessionServer
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageSQLite
import Metrics
import Prometheus
import ServiceLifecycle

/// `mcp-session-server`: the demo MCP server over any storage stack.
@main
struct MCPSessionServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-session-server",
        abstract: "An MCP server (Streamable HTTP on /mcp) that keeps its sessions in durable storage.",
        discussion: """
            Tools: state_set, state_get, ticker. Several instances sharing one PostgreSQL database or Redis serve any session.

            Every flag can also come from the environment: MCP_ and the flag's name in capitals, '_' for '-' (MCP_STORAGE, \
            MCP_BUS, MCP_SESSION_TTL, ...). A flag on the command line wins over its variable; a bad value is reported under \
            the flag's name.
            """)

    /// Runs the command with the flags from the environment added (``EnvironmentFlags``).
    static func main() async {
        let environment = ProcessInfo.processInfo.environment
        await main(EnvironmentFlags.arguments(Array(CommandLine.arguments.dropFirst()), environment: environment))
    }

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
        // Every swift-metrics counter, gauge and timer of the stack, served at /metrics.
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        let stack = try StorageStack(
            storage: try StorageSpec(parsing: storage), bus: try BusSpec(parsing: bus), busGap: busGap.map { .milliseconds($0) },
            cache: cache == .lru,
            maxEntries: cacheMaxEntries, maxBytes: cacheMaxBytes, consistency: consistency == .eventual ? .eventual : .readYourWrites,
            sessionTTL: .seconds(sessionTTL), logger: logger)

        // A setting the storage's server refuses (a wrong password, say) stops here; a server not
        // up yet does not: requests answer 503 until it is.
        do {
            try await stack.checkConfiguration?()
        } catch let error where error.code == .invalidInput {
            throw error
        } catch {
            logger.warning("the storage cannot be reached yet; requests answer 503 until it can", metadata: ["error": "\(error)"])
        }

        let serverConfiguration = MCPServer.Configuration()
        let server = MCPServer(stack: stack.stack, configuration: serverConfiguration, logger: logger)
        server.register(DemoTools.all)

        let router = Router()
        server.addRoutes(to: router)
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
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
