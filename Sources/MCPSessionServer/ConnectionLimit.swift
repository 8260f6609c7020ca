import HummingbirdCore
import Logging
import Metrics

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Caps the connections a server holds open at once. Past the cap the server stops accepting:
/// new connections wait in the listen backlog until one closes, so a flood of idle connections
/// cannot take every file descriptor (then nothing, storage included, could open one).
///
/// Reaching the cap is logged as a warning, at most once per ``logInterval``, and counted in
/// `mcp_server_connection_limit_reached` (each connection accepted at the cap, which the next
/// one then waits behind).
public struct ConnectionLimit: AvailableConnectionsDelegate {
    /// The most connections open at once.
    public let maximum: Int
    /// The shortest time between two warnings about the cap. Default 10 seconds.
    public var logInterval: Duration = .seconds(10)
    private let logger: Logger
    private var open = 0
    private var lastWarning: ContinuousClock.Instant?
    private var reachedSinceWarning = 0
    private let reached = Counter(label: "mcp_server_connection_limit_reached")

    /// - Parameters:
    ///   - maximum: The most connections open at once (at least 1).
    ///   - logger: Where reaching the cap is reported.
    public init(maximum: Int, logger: Logger) {
        self.maximum = max(1, maximum)
        self.logger = logger
    }

    /// The open-file limit (`ulimit -n`) less 128 descriptors kept for storage connections,
    /// files and the runtime, between 16 and 10 000.
    public static var defaultMaximum: Int {
        var limit = rlimit()
        #if os(Linux)
            let found = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0
        #else
            let found = getrlimit(RLIMIT_NOFILE, &limit) == 0
        #endif
        guard found else { return 10_000 }
        let files = Int(clamping: limit.rlim_cur)  // RLIM_INFINITY clamps to Int.max
        return min(10_000, max(16, files - 128))
    }

    public mutating func connectionOpened() {
        open += 1
        guard open >= maximum else { return }
        reachedSinceWarning += 1
        reached.increment()
        let now = ContinuousClock.now
        if let lastWarning, now - lastWarning < logInterval { return }
        logger.warning(
            "connection limit reached: new connections wait until one closes",
            metadata: ["max-connections": "\(maximum)", "open": "\(open)", "times-reached": "\(reachedSinceWarning)"])
        lastWarning = now
        reachedSinceWarning = 0
    }

    public mutating func connectionClosed() {
        open -= 1
    }

    public func isAcceptingNewConnections() -> Bool {
        open < maximum
    }
}
