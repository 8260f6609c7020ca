import Foundation
import Logging
@_spi(Backend) import MCPSessionStorage
import NIOCore
import ServiceLifecycle

/// Sessions in Redis, or Redis Cluster: for several instances, with the data in memory on the
/// Redis server and its durability (the append-only file).
///
/// ```swift
/// let storage = try RedisSessionStorage(configuration: try .init(url: "redis://127.0.0.1:6379"))
/// let group = ServiceGroup(services: [storage, server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// ```
///
/// Every write is one Lua script (`EVALSHA`), atomic on the server: it checks the limits,
/// writes, raises the version and records activity in one step, so two instances writing
/// different keys of one session never lose each other's. Every key of a session carries the
/// session id as a hash tag, so a session lives in one cluster slot. Concurrent calls share the
/// storage's connections as pipelines: many callers, one round trip.
///
/// The connections speak RESP through hiredis's codec over SwiftNIO, so no call blocks a thread:
/// a Redis that is down fails calls with `unavailable` within ``Configuration/operationTimeout``,
/// and the same storage works again when it returns.
///
/// Built with a ``ChangeEmitter`` (shared with a ``RedisChangeBus``), every write `PUBLISH`es its
/// change inside its own script: the other instances hear of it if and only if it happened.
///
/// Run it as a `Service`: graceful shutdown closes its connections.
public final class RedisSessionStorage: ChangeAnnouncingStorage, Service {
    /// The configuration the storage was made with.
    public let configuration: Configuration
    /// What the writes send their changes through, if anything.
    public let changeEmitter: ChangeEmitter?
    let router: RedisRouter
    let keys: RedisKeys
    private let logger: Logger

    /// Makes the storage. Nothing connects until the first call.
    /// - Parameters:
    ///   - configuration: Where to connect and how to behave.
    ///   - changes: What the writes send their changes through: the emitter of the
    ///     ``RedisChangeBus`` the instances share, to have every write publish its change inside
    ///     its own script. `nil` (the default): the writes send nothing themselves.
    /// - Throws: `invalidInput` for a malformed configuration.
    public init(configuration: Configuration, changes: ChangeEmitter? = nil, logger: Logger = Logger(label: "mcp.session.redis"))
        throws(SessionStorageError)
    {
        let addresses = try configuration.validated()
        self.configuration = configuration
        self.changeEmitter = changes
        self.logger = logger
        self.keys = RedisKeys(prefix: configuration.keyPrefix)
        self.router = RedisRouter(
            seeds: addresses, cluster: configuration.cluster, password: configuration.password, database: configuration.database,
            connectionsPerNode: configuration.connectionsPerNode, connectTimeout: configuration.connectTimeout,
            operationTimeout: configuration.operationTimeout, logger: logger)
    }

    /// Waits for graceful shutdown, then closes the connections.
    public func run() async {
        try? await gracefulShutdown()
        router.close()
    }

    /// Checks that Redis takes this configuration: connects, authenticates, selects the database
    /// and answers `PING` (in a cluster, through the slot map).
    ///
    /// Run it before serving, to tell a wrong setting from a Redis that is not up yet.
    /// - Throws: `invalidInput` when Redis answered but refused the configuration (a wrong
    ///   password, a database out of range, a cluster URL for a server without cluster support);
    ///   `unavailable` when no server could be reached.
    public func checkConfiguration() async throws(SessionStorageError) {
        do {
            try await RedisDeadline.$current.withValue(.now() + TimeAmount(configuration.operationTimeout)) {
                for node in try await router.primaries() { try await node.send(["PING"]).check() }
            }
        } catch let error as RedisReplyError {
            throw SessionStorageError(
                .invalidInput, "Redis at \(configuration.nodes.joined(separator: ",")) refused: \(error.message)", underlying: error)
        } catch {
            throw RedisErrors.map(error, "checking the configuration", nodes: configuration.nodes)
        }
    }

    /// The policy from the configuration.
    public var policy: SessionPolicy { configuration.policy }

    // MARK: Running scripts

    /// Runs `body` within the operation timeout, mapping every error to the contract's. Every
    /// command `body` sends carries the deadline (``RedisDeadline``), which its connection
    /// enforces on the event loop: no timer or task per call.
    private func perform<T: Sendable>(_ what: @autoclosure () -> String, _ body: @escaping @Sendable () async throws -> T)
        async throws(SessionStorageError) -> T
    {
        do {
            return try await RedisDeadline.$current.withValue(.now() + TimeAmount(configuration.operationTimeout), operation: body)
        } catch {
            throw RedisErrors.map(error, what(), nodes: configuration.nodes)
        }
    }

    /// Runs `script` on the keys of session `id`; an error reply throws.
    func run(_ script: RedisScript, _ id: SessionID, _ args: [String]) async throws -> RESPValue {
        try await router.run(script, keys: keys.session(id), args: args).check()
    }

    /// Twice the TTL, in milliseconds: Redis's own expiry of a session's keys, behind the cleanup service.
    private var keyLifetime: String { String(Int64(policy.sessionTTL / .milliseconds(1) * 2)) }

    /// The instance id messages carry (empty when the writes send none).
    private var origin: String { changeEmitter?.instanceID ?? "" }

    /// Runs a write whose message is `template` with the number the script learns (a version, an
    /// event id), the script's last three arguments being the channel and the message's two
    /// pieces: inside the script when the emitter claims the write (with the queued changes the
    /// claim carries), or queued as `change` once it committed. `written` reads the number from
    /// the reply, `nil` when the script wrote nothing. `trailing` arguments follow the message's.
    private func write(
        _ script: RedisScript, _ id: SessionID, _ args: [String], message template: ChangeMessageText.Template,
        written: @escaping @Sendable (RESPValue) -> Int64?, change: @escaping @Sendable (Int64) -> SessionChange, trailing: [String] = []
    ) async throws -> RESPValue {
        guard let emitter = changeEmitter else { return try await run(script, id, args + ["", "", ""] + trailing) }
        guard let claim = emitter.claim(carrying: true) else {
            return try await emitter.deferring(
                { try await run(script, id, args + ["", "", ""] + trailing) }, changed: { written($0).map { [change($0)] } ?? [] },
                uncertain: [.mayHaveChanged(id)])
        }
        do {
            let reply = try await run(script, id, args + [emitter.channel, claim.lines + template.prefix, template.suffix] + trailing)
            if written(reply) == nil { emitter.unclaim(claim) }
            return reply
        } catch {
            emitter.unclaim(claim)
            throw error
        }
    }

    /// Runs a write whose whole message is known before it runs and that cannot carry queued
    /// changes (a create, a delete): inside the script when the emitter claims it, the script's
    /// next two arguments being the channel and the message; otherwise queued once it committed.
    /// `trailing` arguments follow the message's.
    private func announcing(
        _ script: RedisScript, _ id: SessionID, _ args: [String], message: String, sent: @escaping @Sendable (RESPValue) -> Bool,
        changed: [SessionChange], uncertain: [SessionChange], trailing: [String] = []
    ) async throws -> RESPValue {
        guard let emitter = changeEmitter else { return try await run(script, id, args + ["", ""] + trailing) }
        if emitter.claim(carrying: false) != nil { return try await run(script, id, args + [emitter.channel, message] + trailing) }
        return try await emitter.deferring(
            { try await run(script, id, args + ["", ""] + trailing) }, changed: { sent($0) ? changed : [] }, uncertain: uncertain)
    }

    /// The answer of a script that returns -1 for a missing session.
    private static func isMissing(_ reply: RESPValue) -> Bool { reply == .integer(-1) }

    // MARK: Sessions

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let session = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        let state = try policy.encodeState(fields.state)
        let args = [
            RedisRecords.time(session.createdAt), session.isInitialized ? "1" : "0", session.protocolVersion ?? "",
            try RedisRecords.json(session.clientInfo), try RedisRecords.json(session.clientCapabilities),
            try RedisRecords.json(session.serverCapabilities), try RedisRecords.json(.object(session.metadata)), String(state.total), keyLifetime,
        ]
        let pairs = state.values.flatMap { [$0.key, String(decoding: $0.value, as: UTF8.self)] }
        let message = ChangeMessageText.transactional(.changed(session.id, version: 1), origin: origin)
        let bucket = RedisKeys.bucket(of: session.id)
        let created = try await perform("creating session \(session.id)") { [self] in
            // The session, then its entries in the indexes (other slots, so separate commands).
            let reply = try await announcing(
                RedisScripts.create, session.id, args, message: message, sent: { $0 == .integer(1) }, changed: [.changed(session.id, version: 1)],
                uncertain: [.mayHaveChanged(session.id)], trailing: pairs)
            guard reply == .integer(1) else { return false }
            async let byActivity = router.send(
                ["ZADD", keys.activityIndex(bucket), RedisRecords.time(session.createdAt), session.id.rawValue], key: keys.activityIndex(bucket))
            async let byID = router.send(["ZADD", keys.idIndex(bucket), "0", session.id.rawValue], key: keys.idIndex(bucket))
            _ = try await (byActivity.check(), byID.check())
            return true
        }
        guard created else { throw SessionStorageError(.versionConflict, "session \(session.id) already exists") }
        return session
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        let reply = try await perform("reading session \(id)") { [self] in try await run(RedisScripts.get, id, []) }
        guard let parts = reply.elements else { return nil }
        guard parts.count == 2, let fields = parts[0].elements, let state = parts[1].elements else {
            throw SessionStorageError.corrupted("session \(id) read back malformed")
        }
        return try RedisRecords.session(id, fields: fields, state: state)
    }

    public func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        let key = keys.session(id)[0]
        let reply = try await perform("reading the version of \(id)") { [self] in try await router.send(["HGET", key, "v"], key: key).check() }
        return reply.int
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let state = try policy.encodeState(session.state)
        let now = Date()
        let args = [
            String(session.version), RedisRecords.time(now), session.isInitialized ? "1" : "0", session.protocolVersion ?? "",
            try RedisRecords.json(session.clientInfo), try RedisRecords.json(session.clientCapabilities),
            try RedisRecords.json(session.serverCapabilities), try RedisRecords.json(.object(session.metadata)), String(state.total), keyLifetime,
        ]
        let pairs = state.values.flatMap { [$0.key, String(decoding: $0.value, as: UTF8.self)] }
        let message = ChangeMessageText.changed(session.id, origin: origin)
        let reply = try await perform("updating session \(session.id)") { [self] in
            // The state pairs follow the message's arguments: the script reads them from the 14th on.
            try await write(
                RedisScripts.update, session.id, args, message: message, written: { $0.elements?.first?.int },
                change: { .changed(session.id, version: $0) }, trailing: pairs)
        }
        guard let parts = reply.elements, parts.count == 2, let version = parts[0].int else {
            if Self.isMissing(reply) { throw .sessionNotFound(session.id) }
            throw SessionStorageError(.versionConflict, "session \(session.id) changed since version \(session.version)")
        }
        var updated = session
        updated.version = version
        updated.lastActivity = now
        updated.createdAt = try RedisRecords.date(parts[1].string)
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let args = [RedisRecords.time(now), RedisRecords.time(now.addingTimeInterval(-policy.activityWriteInterval.timeInterval)), keyLifetime]
        let reply = try await perform("touching session \(id)") { [self] in try await run(RedisScripts.touch, id, args) }
        guard reply == .integer(1) else { throw .sessionNotFound(id) }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        let message = ChangeMessageText.transactional(.deleted(id), origin: origin)
        let bucket = RedisKeys.bucket(of: id)
        return try await perform("deleting session \(id)") { [self] in
            let reply = try await announcing(
                RedisScripts.delete, id, [], message: message, sent: { $0 == .integer(1) }, changed: [.deleted(id)], uncertain: [.deleted(id)])
            try await removeFromIndexes(id, bucket: bucket)
            return reply == .integer(1)
        }
    }

    private func removeFromIndexes(_ id: SessionID, bucket: Int) async throws {
        async let byActivity = router.send(["ZREM", keys.activityIndex(bucket), id.rawValue], key: keys.activityIndex(bucket))
        async let byID = router.send(["ZREM", keys.idIndex(bucket), id.rawValue], key: keys.idIndex(bucket))
        _ = try await (byActivity.check(), byID.check())
    }

    // MARK: State

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try policy.checkKey(key)
        let reply = try await perform("reading state of \(id)") { [self] in try await run(RedisScripts.stateValue, id, [key]) }
        switch reply {
        case .bulk(let bytes?): return try Self.json(bytes, "state value '\(key)' of \(id)")
        case .integer(-1): throw .sessionNotFound(id)
        default: return nil
        }
    }

    private static func json(_ bytes: [UInt8], _ what: String) throws(SessionStorageError) -> JSONValue {
        do { return try JSONValue.decode(Data(bytes)) } catch { throw SessionStorageError.corrupted("\(what) is not JSON", underlying: error) }
    }

    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try policy.encodeStateValue(value, forKey: key)
        let args = [key, String(decoding: data, as: UTF8.self), RedisRecords.time(Date()), String(policy.maxStateBytesPerSession), keyLifetime]
        let message = ChangeMessageText.changed(id, origin: origin)
        let reply = try await perform("setting state of \(id)") { [self] in
            try await write(RedisScripts.setState, id, args, message: message, written: Self.positive, change: { .changed(id, version: $0) })
        }
        switch reply.int {
        case let version? where version > 0: return version
        case -2:
            throw SessionStorageError(
                .limitExceeded, "setting '\(key)' would take session \(id) past its state limit of \(policy.maxStateBytesPerSession) bytes")
        default: throw .sessionNotFound(id)
        }
    }

    /// A positive integer reply: a new version, a new event id.
    private static let positive: @Sendable (RESPValue) -> Int64? = { reply in reply.int.flatMap { $0 > 0 ? $0 : nil } }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try policy.checkKey(key)
        let args = [key, RedisRecords.time(Date()), keyLifetime]
        let message = ChangeMessageText.changed(id, origin: origin)
        let reply = try await perform("removing state of \(id)") { [self] in
            try await write(RedisScripts.removeState, id, args, message: message, written: Self.positive, change: { .changed(id, version: $0) })
        }
        guard let version = Self.positive(reply) else { throw .sessionNotFound(id) }
        return version
    }

    // MARK: Events

    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try policy.encodeEvent(event)
        let now = Date()
        let args = [
            event.stream.rawValue, RedisRecords.encode(event, data: data, at: now), RedisRecords.time(now), String(policy.maxEventsPerSession),
            keyLifetime,
        ]
        let message = ChangeMessageText.eventAppended(id, stream: event.stream, origin: origin)
        let stream = event.stream
        let reply = try await perform("appending an event to \(id)") { [self] in
            try await write(
                RedisScripts.appendEvent, id, args, message: message, written: Self.positive,
                change: { .eventAppended(id, stream: stream, eventID: $0) })
        }
        guard let eventID = Self.positive(reply) else { throw .sessionNotFound(id) }
        return SSEEvent(id: eventID, event: event, encodedData: data, timestamp: now)
    }

    /// Runs a script answering `[id, encoded, …]` or -1 (no session).
    private func events(_ script: RedisScript, _ id: SessionID, _ args: [String], _ what: @autoclosure () -> String) async throws(SessionStorageError)
        -> [SSEEvent]
    {
        let reply = try await perform(what()) { [self] in try await run(script, id, args) }
        guard let elements = reply.elements else {
            if Self.isMissing(reply) { throw .sessionNotFound(id) }
            throw SessionStorageError.corrupted("an events reply for \(id) is malformed")
        }
        return try RedisRecords.events(elements)
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await events(RedisScripts.eventsAfter, id, [String(eventID), String(limit.map { max(0, $0) } ?? -1)], "replaying events of \(id)")
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try await events(
            RedisScripts.streamEventsAfter, id, [stream.rawValue, String(max(0, eventID)), String(limit.map { max(0, $0) } ?? -1)],
            "replaying stream \(stream) of \(id)")
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        let reply = try await perform("reading event \(eventID) of \(id)") { [self] in try await run(RedisScripts.event, id, [String(eventID)]) }
        switch reply {
        case .bulk(let bytes?): return try RedisRecords.decodeEvent(id: eventID, bytes)
        case .integer(-1): throw .sessionNotFound(id)
        default: return nil
        }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        try await events(RedisScripts.recentEvents, id, [String(max(0, limit))], "reading recent events of \(id)")
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        let message = ChangeMessageText.transactional(.eventsDeleted(id), origin: origin)
        let reply = try await perform("deleting events of \(id)") { [self] in
            try await announcing(
                RedisScripts.deleteEvents, id, [String(eventID)], message: message, sent: { ($0.int ?? -1) >= 0 }, changed: [.eventsDeleted(id)],
                uncertain: [.eventsDeleted(id)])
        }
        guard let count = reply.int, count >= 0 else { throw .sessionNotFound(id) }
        return Int(count)
    }

    // MARK: Leases

    public func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? {
        try policy.checkLease(name)
        let reply = try await perform("reading lease \(name) of \(id)") { [self] in try await run(RedisScripts.lease, id, [name]) }
        switch reply {
        case .bulk(let bytes?): return try RedisRecords.lease(String(decoding: bytes, as: UTF8.self))
        case .integer(-1): throw .sessionNotFound(id)
        default: return nil
        }
    }

    public func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try policy.checkLease(name, expected, new)
        let args = [name, RedisRecords.lease(expected), RedisRecords.lease(new), keyLifetime]
        let reply = try await perform("swapping lease \(name) of \(id)") { [self] in try await run(RedisScripts.swapLease, id, args) }
        if Self.isMissing(reply) { throw .sessionNotFound(id) }
        return reply == .integer(1)
    }

    // MARK: Administration

    /// Pages through the id index, bucket by bucket: the order is (bucket of the id, id).
    public func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        try await perform("listing sessions") { [self] in
            // Every remaining bucket at once (one round trip), then in bucket order.
            let first = cursor.map(RedisKeys.bucket(of:)) ?? 0
            let pages = try await Self.concurrently(Array(first..<RedisKeys.buckets)) { [self] bucket -> [SessionID] in
                let key = keys.idIndex(bucket)
                let start = bucket == first ? cursor.map { "(" + $0.rawValue } ?? "-" : "-"
                let reply = try await router.send(["ZRANGEBYLEX", key, start, "+", "LIMIT", "0", String(limit)], key: key).check()
                return (reply.elements ?? []).compactMap { $0.string.flatMap { try? SessionID(validating: $0) } }
            }
            return Array(pages.joined().prefix(limit))
        }
    }

    /// Expires from the activity index, which holds a lower bound of each session's last
    /// activity (its creation, or what an earlier pass read): each candidate's own script checks
    /// the real activity, deletes the session if it is past the cutoff, and otherwise the index
    /// learns the newer activity. Writes never touch the index, so they cost nothing more.
    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        let origin = origin
        return try await perform("expiring sessions") { [self] in
            // The buckets at once, and each page's candidates at once: a pass costs a few round
            // trips, not one per bucket and per session.
            let expired = try await Self.concurrently(Array(0..<RedisKeys.buckets), width: RedisKeys.buckets) { [self] bucket -> [SessionID] in
                let index = keys.activityIndex(bucket)
                var expired: [SessionID] = []
                while true {
                    let page =
                        try await router.send(
                            ["ZRANGEBYSCORE", index, "-inf", "(" + RedisRecords.time(cutoff), "LIMIT", "0", "500"], key: index
                        ).check().elements ?? []
                    let candidates = page.compactMap { $0.string.flatMap { try? SessionID(validating: $0) } }
                    let outcomes = try await Self.concurrently(candidates) { [self] id -> SessionID? in
                        let message = ChangeMessageText.transactional(.deleted(id), origin: origin)
                        let reply = try await announcing(
                            RedisScripts.expire, id, [RedisRecords.time(cutoff)], message: message, sent: { $0 == .integer(1) },
                            changed: [.deleted(id)], uncertain: [])
                        switch reply {
                        case .integer(1):
                            try await removeFromIndexes(id, bucket: bucket)
                            return id
                        case .integer(-1):
                            try await removeFromIndexes(id, bucket: bucket)  // gone already (deleted, or Redis expired it)
                        default:
                            if let activity = reply.string {
                                _ = try await router.send(["ZADD", index, "XX", activity, id.rawValue], key: index).check()
                            }
                        }
                        return nil
                    }
                    expired += outcomes.compactMap { $0 }
                    if page.count < 500 { break }
                }
                return expired
            }.flatMap { $0 }
            return expired
        }
    }

    public func sessionCount() async throws(SessionStorageError) -> Int {
        try await perform("counting sessions") { [self] in
            let counts = try await Self.concurrently(Array(0..<RedisKeys.buckets)) { [self] bucket in
                try await router.send(["ZCARD", keys.idIndex(bucket)], key: keys.idIndex(bucket)).check().int ?? 0
            }
            return Int(counts.reduce(0, +))
        }
    }

    /// Counts each session's kept events (its last id less its first kept): administration that
    /// reads every session's bounds.
    public func eventCount() async throws(SessionStorageError) -> Int {
        let ids = try await allSessionIDs()
        return try await perform("counting events") { [self] in
            let counts = try await Self.concurrently(ids) { [self] id -> Int64 in
                let key = keys.session(id)[0]
                let bounds = try await router.send(["HMGET", key, "e", "f"], key: key).check().elements ?? []
                guard bounds.count == 2, let last = bounds[0].int, let first = bounds[1].int else { return 0 }
                return max(0, last - first + 1)
            }
            return Int(counts.reduce(0, +))
        }
    }

    /// `body` of every item, run concurrently (their commands pipeline on the connections), in
    /// the items' order; at most `width` at a time.
    static func concurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], width: Int = 64, _ body: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            while next < min(width, items.count) {
                let (index, item) = (next, items[next])
                group.addTask { (index, try await body(item)) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < items.count {
                    let (index, item) = (next, items[next])
                    group.addTask { (index, try await body(item)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    /// Nothing to do: Redis keeps its own house.
    public func maintenance() async throws(SessionStorageError) {}
}
