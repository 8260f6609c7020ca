import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A backend server a test suite needs (PostgreSQL, Redis, a DynamoDB-compatible endpoint):
/// where it is, and whether to run or skip the tests that need it.
///
/// Outside CI, tests skip (with ``skipReason``) when the server is not reachable. Under
/// `CI=true` they run anyway and fail, so a missing service never passes silently.
///
/// ```swift
/// let postgres = ServiceEnvironment(name: "PostgreSQL", variable: "MCP_POSTGRES_URL",
///                                   default: "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions")
///
/// @Suite(.enabled(if: postgres.shouldRun, Comment(rawValue: postgres.skipReason)))
/// struct MyPostgresTests { ... }
/// ```
public struct ServiceEnvironment: Sendable {
    /// The service's name, for messages.
    public let name: String
    /// The environment variable that holds its URL.
    public let variable: String
    /// Its URL: the variable's value, or the default.
    public let url: String
    /// Whether `CI=true`.
    public let isCI: Bool

    /// - Parameters:
    ///   - name: The service's name, for messages.
    ///   - variable: The environment variable that holds its URL.
    ///   - defaultURL: The URL when the variable is unset (where the project's own
    ///     `scripts/services` starts it).
    public init(name: String, variable: String, default defaultURL: String) {
        let environment = ProcessInfo.processInfo.environment
        self.name = name
        self.variable = variable
        self.url = environment[variable] ?? defaultURL
        self.isCI = environment["CI"] == "true"
    }

    /// Whether the tests that need the service run: always under CI, otherwise when it answers.
    public var shouldRun: Bool { isCI || isReachable }

    /// Why they are skipped.
    public var skipReason: String {
        "\(name) is not reachable at \(url); run scripts/services start (under CI=true this fails instead)"
    }

    private static let defaultPorts = ["postgres": 5432, "postgresql": 5432, "redis": 6379, "redis+cluster": 6379, "http": 80, "https": 443]

    /// The first host and port the URL names (`scheme://[user[:password]@]host[:port][,host[:port]…][/…]`).
    var firstHostAndPort: (host: String, port: Int)? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let scheme = String(url[..<schemeEnd.lowerBound])
        var authority = url[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let first = authority.prefix { $0 != "," }
        guard let colon = first.lastIndex(of: ":") else {
            return Self.defaultPorts[scheme].map { (String(first), $0) }
        }
        guard let port = Int(first[first.index(after: colon)...]) else { return nil }
        return (String(first[..<colon]), port)
    }

    /// Whether a TCP connection to the URL's (first) host and port (IPv4 or a resolvable name)
    /// succeeds within a second.
    public var isReachable: Bool {
        guard let (host, port) = firstHostAndPort, !host.isEmpty else { return false }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let address = result else { return false }
        defer { freeaddrinfo(result) }
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0
    }
}
