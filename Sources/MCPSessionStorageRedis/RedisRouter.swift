import Logging
import NIOCore
import Synchronization

/// A Lua script the storage runs with `EVALSHA`: loaded once per server (`SCRIPT LOAD`, again
/// after `NOSCRIPT`), identified by the SHA1 the server answers.
final class RedisScript: Sendable {
    let name: String
    let source: String
    private let sha = Mutex<String?>(nil)

    init(_ name: String, _ source: String) {
        self.name = name
        self.source = source
    }

    var knownSHA: String? { sha.withLock { $0 } }
    func remember(_ value: String) { sha.withLock { $0 = value } }
}

/// Sends each command to the server that holds its key: the one server, or, in Redis Cluster,
/// the primary that serves the key's slot. It learns the slot map (`CLUSTER SLOTS`) from the
/// seed nodes, follows `MOVED` (and refreshes the map) and `ASK` (once, with `ASKING`), and
/// waits out `TRYAGAIN` while a slot migrates.
final class RedisRouter: Sendable {
    private let seeds: [RedisAddress]
    private let isCluster: Bool
    private let password: String?
    private let database: Int
    private let connectionsPerNode: Int
    private let connectTimeout: Duration
    private let operationTimeout: Duration
    private let logger: Logger

    private struct Topology {
        var nodes: [RedisAddress: RedisNode] = [:]
        /// The primary of each slot, once known.
        var owners: [RedisAddress?] = Array(repeating: nil, count: RedisSlots.count)
        /// Whether a slot map was read at least once.
        var mapped = false
        var refreshing: Task<Void, any Error>?
    }
    private let topology = Mutex(Topology())

    init(
        seeds: [RedisAddress], cluster: Bool, password: String?, database: Int, connectionsPerNode: Int, connectTimeout: Duration,
        operationTimeout: Duration, logger: Logger
    ) {
        self.seeds = seeds
        self.isCluster = cluster
        self.password = password
        self.database = database
        self.connectionsPerNode = connectionsPerNode
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.logger = logger
    }

    /// The connections to `address`, made once.
    func node(_ address: RedisAddress) -> RedisNode {
        topology.withLock { topology in
            if let node = topology.nodes[address] { return node }
            let node = RedisNode(
                address: address, password: password, database: database, connections: connectionsPerNode, connectTimeout: connectTimeout,
                operationTimeout: operationTimeout)
            topology.nodes[address] = node
            return node
        }
    }

    /// The server for `key` (any seed without a key, or while the slot map is not known yet).
    private func route(_ key: String?) -> RedisAddress {
        guard isCluster, let key else { return seeds[0] }
        let slot = RedisSlots.slot(of: key)
        return topology.withLock { $0.owners[slot] } ?? seeds[0]
    }

    /// Sends `args` to the server holding `key`, following redirections; returns the reply,
    /// error replies other than redirections included.
    func send(_ args: [String], key: String?) async throws -> RESPValue {
        if isCluster { try await ensureSlotMap() }
        var address = route(key)
        var asking = false
        for attempt in 0..<16 {
            let reply: RESPValue
            if asking {
                reply = try await node(address).connection().send(pipelined: [["ASKING"], args])[1]
                asking = false
            } else {
                reply = try await node(address).send(args)
            }
            guard case .error(let message) = reply else { return reply }
            let error = RedisReplyError(message: message)
            switch error.kind {
            case "MOVED":
                guard let target = Self.target(of: message) else { return reply }
                if let key { topology.withLock { $0.owners[RedisSlots.slot(of: key)] = target } }
                refreshSlotMap()
                address = target
            case "ASK":
                guard let target = Self.target(of: message) else { return reply }
                address = target
                asking = true
            case "TRYAGAIN", "LOADING", "CLUSTERDOWN":
                // A slot in the middle of moving, a server loading its data: wait a moment,
                // unless that would pass the operation's deadline.
                let pause = TimeAmount.milliseconds(Int64(min(200, 10 << min(attempt, 5))))
                guard NIODeadline.now() + pause < RedisDeadline.forNextCommand else { throw RedisConnectionError.timedOut }
                try await Task.sleep(for: .nanoseconds(pause.nanoseconds))
            default:
                return reply
            }
        }
        throw RedisReplyError(message: "TOOMANYREDIRECTS \(args.first ?? "") kept being redirected")
    }

    /// Runs `script` with `EVALSHA`, loading it first where the server does not know it.
    func run(_ script: RedisScript, keys: [String], args: [String]) async throws -> RESPValue {
        // The slot map first: without it every key routes to the first seed, which may be down.
        if isCluster { try await ensureSlotMap() }
        let sha: String
        if let known = script.knownSHA {
            sha = known
        } else {
            sha = try await load(script, on: route(keys.first))
        }
        let command = ["EVALSHA", sha, String(keys.count)] + keys + args
        let reply = try await send(command, key: keys.first)
        guard case .error(let message) = reply, message.hasPrefix("NOSCRIPT") else { return reply }
        // A server that has not seen it yet (a new node, a restart): load it there and run again.
        _ = try await load(script, on: route(keys.first))
        return try await send(command, key: keys.first)
    }

    @discardableResult
    private func load(_ script: RedisScript, on address: RedisAddress) async throws -> String {
        let reply = try await node(address).send(["SCRIPT", "LOAD", script.source]).check()
        guard let sha = reply.string else { throw RedisReplyError(message: "ERR SCRIPT LOAD answered \(reply)") }
        script.remember(sha)
        // In a cluster every primary may be asked: load it everywhere known.
        if isCluster {
            for other in topology.withLock({ Array($0.nodes.keys) }) where other != address {
                _ = try? await node(other).send(["SCRIPT", "LOAD", script.source])
            }
        }
        return sha
    }

    /// Every primary (the one server, or each of the cluster's).
    func primaries() async throws -> [RedisNode] {
        guard isCluster else { return [node(seeds[0])] }
        try await ensureSlotMap()
        let addresses = topology.withLock { Set($0.owners.compactMap { $0 }) }
        return addresses.sorted { $0.description < $1.description }.map(node)
    }

    /// Any server that answers, seeds first: for pub/sub, where any node hears everything.
    var firstSeed: RedisAddress { seeds[0] }
    var allSeeds: [RedisAddress] { seeds }

    // MARK: The slot map

    private func ensureSlotMap() async throws {
        let known = topology.withLock { $0.mapped }
        if known { return }
        refreshSlotMap()
        let task = topology.withLock { $0.refreshing }
        try await task?.value
    }

    /// Reloads the slot map from the first seed (or known node) that answers, in the background.
    private func refreshSlotMap() {
        topology.withLock { state in
            guard state.refreshing == nil else { return }
            let candidates = seeds + state.nodes.keys.filter { !seeds.contains($0) }
            state.refreshing = Task { [self] in
                defer { topology.withLock { $0.refreshing = nil } }
                var lastError: (any Error)?
                for address in candidates {
                    do {
                        let reply = try await node(address).send(["CLUSTER", "SLOTS"]).check()
                        let owners = try Self.owners(from: reply, reachedVia: address)
                        topology.withLock {
                            $0.owners = owners
                            $0.mapped = true
                        }
                        return
                    } catch {
                        lastError = error
                    }
                }
                logger.warning("could not read the Redis Cluster slot map", metadata: ["error": "\(lastError.map { "\($0)" } ?? "no node")"])
                throw lastError ?? RedisReplyError(message: "ERR no cluster node answered CLUSTER SLOTS")
            }
        }
    }

    /// The slot map in a `CLUSTER SLOTS` reply: `[[start, end, [host, port, …], replicas…], …]`.
    static func owners(from reply: RESPValue, reachedVia address: RedisAddress) throws -> [RedisAddress?] {
        guard let ranges = reply.elements else { throw RedisReplyError(message: "ERR CLUSTER SLOTS answered \(reply)") }
        var owners: [RedisAddress?] = Array(repeating: nil, count: RedisSlots.count)
        for range in ranges {
            guard let fields = range.elements, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                let primary = fields[2].elements, primary.count >= 2, var host = primary[0].string, let port = primary[1].int,
                start >= 0, end < RedisSlots.count, start <= end
            else { throw RedisReplyError(message: "ERR malformed CLUSTER SLOTS entry \(range)") }
            // An empty host means "the address you reached me on".
            if host.isEmpty || host == "?" { host = address.host }
            for slot in Int(start)...Int(end) { owners[slot] = RedisAddress(host: host, port: Int(port)) }
        }
        return owners
    }

    /// `host:port` of a `MOVED slot host:port` or `ASK slot host:port` error.
    static func target(of message: String) -> RedisAddress? {
        let words = message.split(separator: " ")
        guard words.count >= 3, let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]) else { return nil }
        return RedisAddress(host: String(words[2][..<colon]), port: port)
    }

    /// Closes every connection.
    func close() {
        for node in topology.withLock({ Array($0.nodes.values) }) { node.close() }
    }
}
