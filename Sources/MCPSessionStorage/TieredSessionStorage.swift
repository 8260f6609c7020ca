import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// A durable storage with an in-process front: reads of a cached session cost no I/O, writes go
/// through to the durable tier, and a ``ChangeBus`` tells the other instances what to drop.
///
/// ```swift
/// let durable = try PostgresSessionStorage(configuration: postgres)
/// let bus = try PostgresChangeBus(attachedTo: durable)  // NOTIFY inside each write's statement
/// let storage = TieredSessionStorage(durable: durable, bus: bus)
/// let group = ServiceGroup(services: [durable, bus, storage], gracefulShutdownSignals: [.sigterm], logger: logger)
/// ```
///
/// **Guarantees**
/// - Read-your-writes on one instance: a write updates (or drops) the front only after the
///   durable write succeeded; a write that failed leaves the front as it was, unless it failed
///   as `unavailable` (it may have committed): then the session is dropped here, and the other
///   instances are told to drop it too.
/// - While the bus is up, another instance's write is seen once its message arrives (the bus's
///   propagation delay).
/// - After the bus drops or loses a message, the front is flushed: no entry cached before an
///   outage is served after it. While the bus is down, reads bypass the front.
/// - Whatever goes undetected, no entry is served older than ``Configuration/maxAge``.
///
/// Without a bus (one instance), the front is always on. With one, the front turns on when
/// ``run()`` hears the bus connect, so run this storage as a `Service`.
public final class TieredSessionStorage: SessionStorage, Service {
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
        /// Dimensions added to every metric, to tell several tiers in one process apart. Default none.
        public var metricsDimensions: [(String, String)] = []

        public init() {}
    }

    /// The durable tier.
    public let durable: any SessionStorage
    /// The front.
    public let front: SessionCache
    private let bus: (any ChangeBus)?
    private let configuration: Configuration
    private let logger: Logger
    private let frontEnabled: Atomic<Bool>
    /// Loads in flight, one per session. An invalidation, local write or flush that happens
    /// while a load runs marks it, and a marked load's result is returned but not cached (it
    /// may hold what was just replaced).
    private let loads = Mutex<[SessionID: Load]>([:])

    private struct Load {
        let task: Task<SessionInfo?, any Error>
        /// Tells this load from a later one for the same session.
        let token: UInt64
        var invalidated = false
    }
    private let nextLoadToken = Atomic<UInt64>(0)
    private let metrics: TieredMetrics

    /// A front over `durable`, told of other instances' writes by `bus` (`nil`: one instance).
    /// - Parameter front: The front's sizes and ages.
    public init(durable: any SessionStorage, front configuration: Configuration = Configuration(), bus: (any ChangeBus)? = nil, logger: Logger = Logger(label: "mcp.session.tiered")) {
        self.durable = durable
        self.configuration = configuration
        self.bus = bus
        self.logger = logger
        let metrics = TieredMetrics(dimensions: configuration.metricsDimensions)
        self.metrics = metrics
        self.front = SessionCache(
            maxEntries: configuration.maxEntries, maxBytes: configuration.maxBytes, maxAge: configuration.maxAge,
            onEvict: { metrics.evictions.increment(by: $0) })
        self.frontEnabled = Atomic(bus == nil)
    }

    /// The durable tier's limits.
    public var limits: SessionLimits { durable.limits }

    /// Whether reads are being served from the front now.
    public var isFrontEnabled: Bool { frontEnabled.load(ordering: .acquiring) }

    // MARK: The bus

    /// Applies what the bus reports until the bus ends, or graceful shutdown.
    public func run() async throws {
        guard let bus else {
            try? await gracefulShutdown()
            return
        }
        // Not `cancelOnGracefulShutdown()`: its merge hands every message across tasks.
        await cancelWhenGracefulShutdown { [self] in
            var lastSequence: [String: UInt64] = [:]
            for await signal in bus.signals() {
                switch signal {
                case .connected:
                    flush("bus connected")
                    lastSequence = [:]
                    frontEnabled.store(true, ordering: .releasing)
                case .disconnected:
                    frontEnabled.store(false, ordering: .releasing)
                    flush("bus disconnected")
                case .message(let message):
                    guard message.origin != bus.instanceID else { continue }
                    // Sequence 0: the transport itself delivers every message while connected
                    // (PostgreSQL NOTIFY sent inside the writes), so there is no sequence to check.
                    if message.sequence != 0 {
                        if let last = lastSequence[message.origin], message.sequence != last + 1 {
                            flush("gap in \(message.origin)'s messages: \(last) then \(message.sequence)")
                        }
                        lastSequence[message.origin] = message.sequence
                    }
                    apply(message.change)
                }
            }
        }
        frontEnabled.store(false, ordering: .releasing)
    }

    private func flush(_ reason: String) {
        loads.withLock { loads in
            for id in loads.keys { loads[id]!.invalidated = true }
        }
        front.removeAll()
        metrics.flushes.increment()
        logger.debug("flushed the session front", metadata: ["reason": "\(reason)"])
    }

    /// Drops what another instance's change made stale.
    func apply(_ change: SessionChange) {
        metrics.invalidations.increment()
        switch change {
        case .sessionChanged(let id, let version):
            invalidateLoad(id)
            front.update(id) { $0.session.version >= version }
        case .sessionDeleted(let id):
            invalidateLoad(id)
            front.remove(id)
        case .eventAppended(let id, _, let eventID):
            // A foreign event breaks the contiguous run this instance holds, unless it is already in it.
            front.update(id) { entry in
                if let last = entry.events.last?.id, eventID > last { entry.events = [] }
                return true
            }
        case .eventsDeleted(let id):
            front.update(id) { entry in
                entry.events = []
                return true
            }
        }
    }

    private func publish(_ change: SessionChange) async {
        guard let bus, !bus.changesEmittedByDurableWrites else { return }
        await bus.publish(change)
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

    /// Loads a session from the durable tier; concurrent loads of one session share one read.
    ///
    /// A caller joins a load in flight only if nothing invalidated it: a load that raced a
    /// write may return what the write replaced, and a caller who made that write must see it.
    private func load(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        let (task, token, joined) = loads.withLock { loads -> (Task<SessionInfo?, any Error>, UInt64, Bool) in
            if let running = loads[id], !running.invalidated { return (running.task, running.token, true) }
            let task = Task { [durable, metrics] in
                let started = ContinuousClock.now
                defer { metrics.durableLatency.recordInterval(since: started) }
                return try await durable.session(id)
            }
            let token = nextLoadToken.add(1, ordering: .relaxed).newValue
            loads[id] = Load(task: task, token: token)
            return (task, token, false)
        }
        if joined { metrics.coalescedLoads.increment() }
        let outcome = await task.result
        if !joined {
            // The caller that started the load retires it (unless a newer load replaced it),
            // and caches the result if nothing raced it.
            let clean = loads.withLock { loads -> Bool in
                guard let load = loads[id], load.token == token else { return false }
                loads[id] = nil
                return !load.invalidated
            }
            if clean, isFrontEnabled, case .success(let session?) = outcome { front.store(session) }
        }
        switch outcome {
        case .success(let session): return session
        case .failure(let error): throw error as? SessionStorageError ?? SessionStorageError(.unavailable, "loading session \(id)", underlying: error)
        }
    }

    private func invalidateLoad(_ id: SessionID) {
        loads.withLock { $0[id]?.invalidated = true }
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        if let session = cachedSession(id) { return session }
        return try await load(id)
    }

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try limits.checkKey(key)
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

    public func listSessions() async throws(SessionStorageError) -> [SessionID] { try await durable.listSessions() }
    public func sessionCount() async throws(SessionStorageError) -> Int { try await durable.sessionCount() }
    public func eventCount() async throws(SessionStorageError) -> Int { try await durable.eventCount() }
    public func maintenance() async throws(SessionStorageError) { try await durable.maintenance() }

    // MARK: Writes: durable first, then the front, then the bus

    private func timed<T>(_ body: () async throws(SessionStorageError) -> T) async throws(SessionStorageError) -> T {
        let started = ContinuousClock.now
        defer { metrics.durableLatency.recordInterval(since: started) }
        return try await body()
    }

    /// Marks a local write, so a concurrent load does not cache what it replaced.
    private func wrote(_ id: SessionID) { invalidateLoad(id) }

    /// Runs a durable write of session `id`. A write that failed as `unavailable` may still
    /// have committed (its answer lost on the way back): the session leaves the front, here and
    /// (through the bus) on the other instances, so none serves what the write may have replaced.
    private func writing<T>(_ id: SessionID, _ body: () async throws(SessionStorageError) -> T) async throws(SessionStorageError) -> T {
        do {
            return try await timed(body)
        } catch where error.code == .unavailable {
            wrote(id)
            front.remove(id)
            await publish(.sessionChanged(id, version: .max))
            throw error
        }
    }

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let session = try await timed { [durable] () async throws(SessionStorageError) in try await durable.createSession(id: id, fields) }
        wrote(session.id)
        if isFrontEnabled { front.store(session, events: []) }
        await publish(.sessionChanged(session.id, version: session.version))
        return session
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let updated = try await writing(session.id) { [durable] () async throws(SessionStorageError) in try await durable.updateSession(session) }
        wrote(updated.id)
        if isFrontEnabled { front.store(updated) }
        await publish(.sessionChanged(updated.id, version: updated.version))
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let interval = limits.activityWriteInterval.timeInterval
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
        await publish(.sessionDeleted(id))
        return existed
    }

    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let version = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.setState(value, forKey: key, in: id) }
        // What a durable read would return: the value after a JSON round trip.
        let stored = try? JSONValue.decode(try value.encoded())
        await committedState(of: id, at: version) { state in
            guard let stored else { return false }
            state[key] = stored
            return true
        }
        return version
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let version = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.removeState(forKey: key, in: id) }
        await committedState(of: id, at: version) { state in
            state[key] = nil
            return true
        }
        return version
    }

    /// After a state write committed at `version`: applies `change` to the cached copy if that
    /// copy is the version just before (otherwise, or if `change` returns `false`, drops it),
    /// then publishes the change.
    private func committedState(of id: SessionID, at version: Int64, _ change: (inout [String: JSONValue]) -> Bool) async {
        wrote(id)
        front.update(id) { entry in
            guard entry.session.version == version - 1, change(&entry.session.state) else { return false }
            entry.session.version = version
            entry.session.lastActivity = Date()
            return true
        }
        await publish(.sessionChanged(id, version: version))
    }

    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let stored = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.appendEvent(event, to: id) }
        // Never hold an event the durable tier has trimmed: replay from a trimmed cursor must find nothing.
        let keep = min(configuration.eventsPerSession, limits.maxEventsPerSession)
        front.append(stored, to: id, keep: keep)
        await publish(.eventAppended(id, stream: stored.stream, eventID: stored.id))
        return stored
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        let count = try await writing(id) { [durable] () async throws(SessionStorageError) in try await durable.deleteEvents(in: id, before: eventID) }
        front.update(id) { entry in
            entry.events.removeAll { $0.id < eventID }
            return true
        }
        await publish(.eventsDeleted(id))
        return count
    }

    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        let ids = try await timed { [durable] () async throws(SessionStorageError) in try await durable.expireSessions(olderThan: cutoff) }
        for id in ids {
            wrote(id)
            front.remove(id)
            await publish(.sessionDeleted(id))
        }
        return ids
    }
}

/// The tier's counters and timer, through swift-metrics.
struct TieredMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let evictions: Counter
    let invalidations: Counter
    let flushes: Counter
    let coalescedLoads: Counter
    let durableLatency: Metrics.Timer

    init(dimensions: [(String, String)]) {
        hits = Counter(label: "mcp_session_front_hits", dimensions: dimensions)
        misses = Counter(label: "mcp_session_front_misses", dimensions: dimensions)
        evictions = Counter(label: "mcp_session_front_evictions", dimensions: dimensions)
        invalidations = Counter(label: "mcp_session_front_invalidations", dimensions: dimensions)
        flushes = Counter(label: "mcp_session_front_flushes", dimensions: dimensions)
        coalescedLoads = Counter(label: "mcp_session_front_coalesced_loads", dimensions: dimensions)
        durableLatency = Metrics.Timer(label: "mcp_session_durable_latency", dimensions: dimensions)
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
