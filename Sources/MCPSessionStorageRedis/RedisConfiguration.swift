import Foundation
@_spi(Backend) import MCPSessionStorage

extension RedisSessionStorage {
    /// Where the Redis backend connects and how it behaves.
    ///
    /// ```swift
    /// var configuration = try RedisSessionStorage.Configuration(url: "redis://:secret@cache:6379/0")
    /// configuration.operationTimeout = .seconds(2)
    /// let storage = try RedisSessionStorage(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The servers to reach: the one server, or, for Redis Cluster, any of its nodes (the
        /// storage learns the rest from them).
        public var nodes: [String]
        /// Whether the nodes form a Redis Cluster: keys are routed to the primary of their slot.
        /// Default: when more than one node is given.
        public var cluster: Bool
        /// The password (`AUTH`), if the server needs one.
        public var password: String?
        /// The database number (`SELECT`; standalone only). Default 0.
        public var database: Int = 0
        /// The start of every key. Default `mcp`. Letters, digits, `_`, `-`, `.` and `:`.
        public var keyPrefix: String = "mcp"
        /// Pipelined connections per server. Default 2. Connection k lives on event loop k of
        /// NIO's shared group, and a caller running on one of those loops uses that loop's
        /// connection (no thread hop per command); other callers take the connections in turn.
        /// With at least as many connections as the group has loops (one per core), every loop has one.
        public var connectionsPerNode: Int = 2
        /// How long opening a connection may take. Default 2 seconds.
        public var connectTimeout: Duration = .seconds(2)
        /// How long any call may take, before it fails with `unavailable`. Default 5 seconds.
        public var operationTimeout: Duration = .seconds(5)
        /// Session lifetime, value sizes, events kept per session: the shared policy.
        public var policy = SessionPolicy()

        /// Servers as `host[:port]` (default port 6379).
        public init(nodes: [String], cluster: Bool? = nil) {
            self.nodes = nodes
            self.cluster = cluster ?? (nodes.count > 1)
        }

        /// Reads `redis://[:PASSWORD@]HOST[:PORT][/DB][?prefix=NAME]`, several `HOST[:PORT]`
        /// separated by commas for a cluster, or `redis+cluster://…` for a cluster reached through
        /// one node. `prefix` sets ``keyPrefix``.
        /// - Throws: `invalidInput` for anything else.
        public init(url text: String) throws(SessionStorageError) {
            let schemes = ["redis://": false, "redis+cluster://": true]
            guard let (scheme, isCluster) = schemes.first(where: { text.hasPrefix($0.key) }) else {
                throw SessionStorageError(
                    .invalidInput,
                    "expected redis://[:PASSWORD@]HOST[:PORT][/DB] or redis+cluster://HOST[:PORT],…, got \(text.prefix(64).debugDescription)")
            }
            var rest = Substring(text.dropFirst(scheme.count))
            var prefix: String?
            if let question = rest.firstIndex(of: "?") {
                for item in rest[rest.index(after: question)...].split(separator: "&") {
                    let pair = item.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2, pair[0] == "prefix" else {
                        throw SessionStorageError(.invalidInput, "unknown Redis URL parameter \(item.prefix(32).debugDescription); only prefix=NAME")
                    }
                    prefix = String(pair[1])
                }
                rest = rest[..<question]
            }
            var password: String?
            if let at = rest.lastIndex(of: "@") {
                let credentials = rest[..<at]
                password = String(credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).last ?? credentials)
                password = password?.removingPercentEncoding ?? password
                rest = rest[rest.index(after: at)...]
            }
            var database = 0
            if let slash = rest.firstIndex(of: "/") {
                let number = rest[rest.index(after: slash)...]
                guard number.isEmpty || Int(number) != nil else {
                    throw SessionStorageError(.invalidInput, "the database in a Redis URL is a number, got \(number.prefix(16).debugDescription)")
                }
                database = Int(number) ?? 0
                rest = rest[..<slash]
            }
            let nodes = rest.split(separator: ",").map(String.init)
            guard !nodes.isEmpty, nodes.allSatisfy({ (try? Self.address(of: $0)) != nil }) else {
                throw SessionStorageError(
                    .invalidInput, "expected HOST[:PORT] (comma-separated for a cluster) in \(text.prefix(64).debugDescription)")
            }
            self.init(nodes: nodes, cluster: isCluster || nodes.count > 1)
            self.password = password?.isEmpty == true ? nil : password
            self.database = database
            if let prefix { self.keyPrefix = prefix }
        }

        /// `host[:port]` as an address.
        static func address(of node: String) throws(SessionStorageError) -> RedisAddress {
            var host = Substring(node)
            var port = 6379
            if let colon = node.lastIndex(of: ":"), !node.hasSuffix("]") {
                guard let number = Int(node[node.index(after: colon)...]), (1...65535).contains(number) else {
                    throw SessionStorageError(.invalidInput, "bad port in Redis node \(node.prefix(64).debugDescription)")
                }
                port = number
                host = node[..<colon]
            }
            guard !host.isEmpty else { throw SessionStorageError(.invalidInput, "empty host in Redis node \(node.prefix(64).debugDescription)") }
            return RedisAddress(host: String(host), port: port)
        }

        /// Checks the settings.
        func validated() throws(SessionStorageError) -> [RedisAddress] {
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:".utf8)
            guard !keyPrefix.isEmpty, keyPrefix.utf8.count <= 64, keyPrefix.utf8.allSatisfy(allowed.contains) else {
                throw SessionStorageError(.invalidInput, "keyPrefix must be letters, digits, '_', '-', '.' or ':'")
            }
            guard !cluster || database == 0 else { throw SessionStorageError(.invalidInput, "Redis Cluster has only database 0") }
            guard !nodes.isEmpty else { throw SessionStorageError(.invalidInput, "no Redis node given") }
            var addresses: [RedisAddress] = []
            for node in nodes { addresses.append(try Self.address(of: node)) }
            return addresses
        }
    }
}
