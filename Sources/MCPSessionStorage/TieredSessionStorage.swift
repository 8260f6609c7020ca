import Foundation
import Logging
import Metrics
import Synchronization

/// A durable storage with an in-process front: reads of a cached session cost no I/O, writes go
/// through to the durable tier, and a ``ChangeBus`` tells the other instances what to drop.
///
/// ```swift
/// let changes = try ChangeEmitter()
/// let durable = try PostgresSessionStorage(configuration: postgres, changes: changes)
/// let bus = try PostgresChangeBus(configuration: postgres, changes: changes)
/// let storage = TieredSessionStorage(durable: durable, bus: bus)
/// ```
///
/// ``SessionStack`` builds this for you, with the services to run in the right order.
///
/// **Guarantees**
/// - Read-your-writes on one instance: a write updates (or drops) the front only after the
///   durable write succeeded; a write that failed leaves the front as it was, unless it failed
///   as `unavailable` (it may have committed): then the session is dropped here, and the other
///   instances are told to drop it too.
/// - While the bus is up, another instance's write is seen once its message arrives (the bus's
///   propagation delay). Messages are applied on the bus's thread as they are read.
/// - After the bus drops or loses a message, the front is flushed: no entry cached before an
///   outage is served after it. While the bus is down, reads bypass the front.
/// - Whatever goes undetected, no entry is served older than ``Configuration/maxAge``.
/// - No entry is served once its session looks expired by its cached activity: another
///   instance may have recorded activity since (activity alone does not raise the version, so
///   it sends no message), and only the durable tier knows.
///
/// Without a bus (one instance), the front is always on; with one, it is on while the bus is
/// connected.
public final class TieredSessionStorage: SessionStorage {
    /// Sizes and ages of the front.
    public struct Configuration: Sendable {
        /// Sessions held at most. Default 10 000.
        public var maxEntries = 10_000
        /// Bytes held at most, estimated from the sessions' contents. Default 64 MiB.
        public var maxBytes = 64 << 20
        /// The longest an entry is served without hearing from the durable tier: the bound on
        /// staleness if a message is lost undetected. Default 30 seconds.
        public var maxAge: Duration = .seconds(30)
        /// Newest events kept per session for replay from memory. Default 64.
        public var eventsPerSession = 64
        /// What ``TieredSessionStorage/currentSession(_:)`` (a server's first read of each request)
        /// promises across instances. Default ``Consistency/readYourWrites``.
        public var consistency: Consistency = .readYourWrites
        /// Dimensions added to every metric, to tell several tiers in one process apart. Default none.
        public var metricsDimensions: [(String, String)] = []

        public init() {}
    }

    /// How a request's first read is kept true to other instances' writes (with a bus; alone,
    /// an instance's front is always current).
    public enum Consistency: Sendable, Hashable {
        /// ``currentSession(_:)`` confirms the cached copy's version with the durable tier (one
        /// small read, shared by concurrent requests) and reloads it if another instance wrote
        /// since: a request sees every write acknowledged before it began, on any instance.
        /// The request's other reads are front hits.
        case readYourWrites
        /// The front is trusted while the bus is connected: another instance's write is seen
        /// once its message arrives (about a millisecond when idle, up to hundreds under load,
        /// since each instance's database connection hears it when the database server gets to
        /// it). No round trip. For clusters whose balancer keeps a client on one instance.
        case eventual
    }

    /// The durable tier.
    public let durable: any SessionStorage
    /// The front (internal: every change to it goes through the tier).
    let front: SessionCache
    private let configuration: Configuration
    private let loads = SingleFlight()
    private let metrics: TieredMetrics
    /// Applies what the bus hears; `nil` without a bus.
    private let follower: BusFollower?
    private let subscription: BusSubscription?
    /// Where this tier publishes its writes: `nil` without a bus, or when the durable tier's
    /// writes send their own changes on it.
    private let publisher: (any ChangeBus)?

    /// A front over `durable`, told of other instances' writes by `bus` (`nil`: one instance).
    /// - Parameters:
    ///   - durable: The storage every write goes to.
    ///   - front: The front's sizes and ages.
    ///   - bus: The bus shared with the other instances. The tier subscribes at once, and serves
    ///     from the front while the bus is connected.
    public init(
        durable: any SessionStorage, front configuration: Configuration = Configuration(), bus: (any ChangeBus)? = nil,
        logger: Logger = Logger(label: "mcp.session.tiered")
    ) {
        self.durable = durable
        self.configuration = configuration
        let metrics = TieredMetrics(dimensions: configuration.metricsDimensions)
        self.metrics = metrics
        self.front = SessionCache(
            maxEntries: configuration.maxEntries, maxBytes: configuration.maxBytes, maxAge: configuration.maxAge,
            ttl: durable.policy.sessionTTL, onEvict: { metrics.evictions.increment(by: $0) })
        guard let bus else {
            (follower, subscription, publisher) = (nil, nil, nil)
            return
        }
        let follower = BusFollower(instanceID: bus.instanceID, front: front, loads: loads, metrics: metrics, logger: logger)
        self.follower = follower
        self.subscription = bus.subscribe { follower.handle($0) }
        let announced = (durable as? any ChangeAnnouncingStorage)?.changeEmitter?.instanceID == bus.instanceID
        self.publisher = announced ? nil : bus
    }

    /// The durable tier's policy.
    public var policy: SessionPolicy { durable.policy }

    /// Whether reads are being served from the front now.
    public var isFrontEnabled: Bool { follower?.isEnabled ?? true }

    /// Whether the front holds a fresh copy of session `id` (for diagnostics and tests; it does
    /// not count as a use).
    public func isCached(_ id: SessionID) -> Bool { front.contains(id) }

    /// What the front holds now: entries, and their estimated bytes.
    public var frontSize: (entries: Int, bytes: Int) { (front.count, front.bytes) }

    /// Drops what another instance's change made stale, as if the bus had delivered it.
    func apply(_ change: SessionChange) {
        follower?.apply(change)
    }

    // MARK: Reads

    /// A front lookup, counted as a hit or a miss; nothing while the front is off.
    private func fromFront<T>(_ read: () -> T?) -> T? {
        guard isFrontEnabled else { return nil }
        if let value = read() {
            metrics.hits.increment()
            return value
        }
        metrics.misses.increment()
        return nil
    }

    /// The cached session alone: what most reads need, without copying its events.
    private func cachedSession(_ id: SessionID) -> SessionInfo? { fromFront { front.session(id) } }

    /// The cached events of a session (a contiguous run ending at its newest event).
    private func cachedEvents(_ id: SessionID) -> [SSEEvent]? { fromFront { front.events(id) } }

    /// Loads a session from the durable tier, sharing the read with concurrent loaders.
    private func load(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        let outcome = await loads.load(id) { [durable, metrics] in
            let started = ContinuousClock.now
            defer { metrics.durableLatency.recordInterval(since: started) }
            return try await durable.session(id)
        }
        if outcome.joined { metrics.coalescedLoads.increment() }
        if outcome.cacheable, isFrontEnabled, case .success(let session?) = outcome.result { front.store(session) }
        return try outcome.result.get()
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        if let session = cachedSession(id) { return session }
        return try await load(id)
    }

    public func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        try await timed { [durable] () async throws(SessionStorageError) in try await durable.sessionVersion(id) }
    }

    /// The session with every write acknowledged before this call began, on any instance:
    /// with ``Consistency/readYourWrites`` and a bus, the cached copy if the durable tier's
    /// version (one small read) says it is current, otherwise a fresh load. Without a bus, or
    /// with ``Consistency/eventual``, ``session(_:)``.
    public func currentSession(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        guard follower != nil, configuration.consistency == .readYourWrites, isFrontEnabled else { return try await session(id) }
        guard let version = try await sessionVersion(id) else {
            wrote(id)
            front.remove(id)
            return nil
        }
        if let cached = cachedSession(id), cached.version >= version { return cached }
        // Behind, or absent: a load started now sees that version, so none started before may be joined.
        loads.invalidate(id)
        // And the copy known to be behind goes now: this load may not be stored (a concurrent
        // request's invalidation makes it unclean), and the request's later reads hit the front.
        front.update(id) { $0.session.version >= version }
        return try await load(id)
    }

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try policy.checkKey(key)
        if let session = cachedSession(id) { return session.state[key] }
        guard let session = try await load(id) else { throw .sessionNotFound(id) }
        return session.state[key]
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        if let events = cachedEvents(id), let first = events.first, first.id <= eventID,
            let cursor = events.last(where: { $0.id == eventID })
        {
            let later = events.lazy.filter { $0.id > eventID && $0.stream == cursor.stream }
            return Array(later.prefix(limit ?? .max))
        }
        return try await timed { [durable] () async throws(SessionStorageError) in try await durable.events(in: id, after: eventID, limit: limit) }
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        // The cached run serves it when it starts at or before the position asked for.
        if let cached = cachedEvents(id), let first = cached.first, first.id <= eventID + 1 {
            return Array(cached.lazy.filter { $0.stream == stream && $0.id > eventID }.prefix(limit ?? .max))
        }
        return try await timed { [durable] () async throws(SessionStorageError) in
            try await durable.events(in: id, stream: stream, after: eventID, limit: limit)
        }
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        if let cached = cachedEvents(id)?.first(where: { $0.id == eventID }) { return cached }
        return try await timed { [durable] () async throws(SessionStorageError) in try await durable.event(eventID, in: id) }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        if let events = cachedEvents(id), events.count >= limit {
            return Array(events.suffix(max(0, limit)))
        }
        return try await timed { [durable] () async throws(SessionStorageError) in try await durable.recentEvents(in: id, limit: limit) }
    }

    // MARK: Leases: the durable tier's (never cached)

    public func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? {
        try await timed { [durable] () async throws(SessionStorageError) in try await durable.lease(name, in: id) }
    }

    public func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try await timed { [durable] () async throws(SessionStorageError) in try await durable.swapLease(name, in: id, expected: expected, new: new) }
    }

    // MARK: Administration: the durable tier's

    public func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        try await durable.listSessions(after: cursor, limit: limit)
    }
    public func sessionCount() async throws(SessionStorageError) -> Int { try await durable.sessionCount() }
    public func eventCount() async throws(SessionStorageError) -> Int { try await durable.eventCount() }
    public func maintenance() async throws(SessionStorageError) { try await durable.maintenance() }

    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        let ids = try await timed { [durable] () async throws(SessionStorageError) in try await durable.expireSessions(olderThan: cutoff) }
        for id in ids {
            wrote(id)
            front.remove(id)
            publisher?.publish(.deleted(id))
        }
        return ids
    }

    // MARK: Writes: durable first, then the front, then the bus

    private func timed<T>(_ body: () async throws(SessionStorageError) -> T) async throws(SessionStorageError) -> T {
        let started = ContinuousClock.now
        defer { metrics.durableLatency.recordInterval(since: started) }
        return try await body()
    }

    /// Marks a local write, so a concurrent load does not cache what it replaced.
    private func wrote(_ id: SessionID) { loads.invalidate(id) }

    /// Runs a durable write of session `id`. A write that failed as `unavailable` may still
    /// have committed (its answer lost on the way back): the session leaves the front, here and
    /// (through the bus) on the other instances, so none serves what the write may have replaced.
    private func writing<T>(_ id: SessionID, _ body: () async throws(SessionStorageError) -> T) async throws(SessionStorageError) -> T {
        do {
            return try await timed(body)
        } catch  where error.code == .unavailable {
            wrote(id)
            front.remove(id)
            publisher?.publish(.mayHaveChanged(id))
            throw error
        }
    }

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let session = try await timed { [durable] () async throws(SessionStorageError) in try await durable.createSession(id: id, fields) }
        wrote(session.id)
        if isFrontEnabled { front.store(session, events: []) }
        publisher?.publish(.changed(session.id, version: session.version))
        return session
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let updated = try await writing(session.id) { [durable] () async throws(SessionStorageError) in try await durable.updateSession(session) }
        wrote(updated.id)
        if isFrontEnabled { front.store(updated) }
        publisher?.publish(.changed(updated.id, version: updated.version))
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let interval = policy.activityWriteInterval.timeInterval
        // The front knows when this instance last recorded activity: skip the round trip.
        if let session = cachedSession(id), session.lastActivity >= now.addingTimeInterval(-interval) { return }
        try await timed { [durable] () async throws(SessionStorageError) in try await durable.touchSession(id, at: now) }
        front.update(id) { entry in
            entry.session.lastActivity = max(entry.session.lastActivity, now)
            return true
        }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        let existed = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.deleteSession(id) }
        wrote(id)
        front.remove(id)
        publisher?.publish(.deleted(id))
        return existed
    }

    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let version = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.setState(value, forKey: key, in: id)
        }
        // What a durable read would return: the value after a JSON round trip.
        let stored = try? JSONValue.decode(try value.encoded())
        committedState(of: id, at: version) { state in
            guard let stored else { return false }
            state[key] = stored
            return true
        }
        return version
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let version = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.removeState(forKey: key, in: id) }
        committedState(of: id, at: version) { state in
            state[key] = nil
            return true
        }
        return version
    }

    /// After a state write committed at `version`: applies `change` to the cached copy if that
    /// copy is the version just before (otherwise, or if `change` returns `false`, drops it),
    /// then publishes the change.
    private func committedState(of id: SessionID, at version: Int64, _ change: (inout [String: JSONValue]) -> Bool) {
        wrote(id)
        front.update(id) { entry in
            guard entry.session.version == version - 1, change(&entry.session.state) else { return false }
            entry.session.version = version
            entry.session.lastActivity = Date()
            return true
        }
        publisher?.publish(.changed(id, version: version))
    }

    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let stored = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.appendEvent(event, to: id) }
        // Never hold an event the durable tier has trimmed: replay from a trimmed cursor must find nothing.
        let keep = min(configuration.eventsPerSession, policy.maxEventsPerSession)
        front.append(stored, to: id, keep: keep)
        publisher?.publish(.eventAppended(id, stream: stored.stream, eventID: stored.id))
        return stored
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        let count = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.deleteEvents(in: id, before: eventID)
        }
        front.update(id) { entry in
            entry.events.removeAll { $0.id < eventID }
            return true
        }
        publisher?.publish(.eventsDeleted(id))
        return count
    }
}
