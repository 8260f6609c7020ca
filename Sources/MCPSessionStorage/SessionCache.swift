import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The in-process front of ``TieredSessionStorage``: an LRU of sessions bounded by entry count
/// and by (estimated) bytes, each entry stamped with its session version and the time until
/// which it may be served: the maximum age after it was cached, or sooner, when the session's
/// idle time reaches the TTL (another instance may have recorded activity since; only the
/// durable tier knows).
///
/// O(1) for every operation: a dictionary maps ids to slots of an array-backed doubly linked
/// list (no node allocations once warm). One `Mutex`, held for a few pointer updates.
final class SessionCache: Sendable {
    /// What one entry holds.
    struct Entry: Sendable {
        /// The session as last read or written by this instance.
        var session: SessionInfo
        /// A contiguous run of the session's newest events, when this instance knows it.
        var events: [SSEEvent]
        /// When the entry was cached (``SessionCache/now()``).
        var cachedAt: UInt64
        /// Until when (``SessionCache/now()``) it may be served.
        var servedUntil: UInt64
        /// The bytes the entry counts against the byte limit.
        var bytes: Int
    }

    private struct Node {
        var key: SessionID
        var entry: Entry
        var previous: Int
        var next: Int
    }

    private struct State {
        var index: [SessionID: Int] = [:]
        var nodes: [Node] = []
        var free: [Int] = []
        var head = -1  // most recently used
        var tail = -1  // least recently used
        var bytes = 0
    }

    /// The most entries held.
    let maxEntries: Int
    /// The most bytes held, by ``estimatedBytes(of:)``.
    let maxBytes: Int
    /// Entries older than this are treated as absent.
    let maxAge: Duration
    private let maxAgeNanoseconds: UInt64
    /// The session TTL, if entries stop at it.
    private let ttl: TimeInterval?
    private let state = Mutex(State())
    private let onEvict: @Sendable (Int) -> Void

    init(maxEntries: Int, maxBytes: Int, maxAge: Duration, ttl: Duration? = nil, onEvict: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.maxEntries = max(1, maxEntries)
        self.maxBytes = max(1, maxBytes)
        self.maxAge = maxAge
        self.ttl = ttl?.timeInterval
        // Clamped: a maxAge past UInt64 nanoseconds (585 years) means "never", not a trap.
        let nanoseconds = maxAge.timeInterval * 1e9
        self.maxAgeNanoseconds = nanoseconds < Double(UInt64.max) ? UInt64(max(0, nanoseconds)) : .max
        self.onEvict = onEvict
    }

    /// Entries held now.
    var count: Int { state.withLock { $0.index.count } }
    /// Bytes held now.
    var bytes: Int { state.withLock { $0.bytes } }

    /// Monotonic nanoseconds from the kernel's coarse clock: a vDSO read of a few nanoseconds
    /// (the precise clock costs several times more on every hit), with millisecond resolution,
    /// plenty for ages counted in seconds.
    static func now() -> UInt64 {
        var time = timespec()
        #if os(Linux)
            clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
        #else
            clock_gettime(CLOCK_MONOTONIC, &time)
        #endif
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// The fresh entry for `id`, marked most recently used; `nil` if absent or too old.
    func entry(_ id: SessionID, now: UInt64 = SessionCache.now()) -> Entry? {
        state.withLock { state in
            guard let slot = freshSlot(id, now: now, in: &state) else { return nil }
            return state.nodes[slot].entry
        }
    }

    /// Whether a fresh entry for `id` is held, without marking it used.
    func contains(_ id: SessionID, now: UInt64 = SessionCache.now()) -> Bool {
        state.withLock { state in
            guard let slot = state.index[id] else { return false }
            return now < state.nodes[slot].entry.servedUntil
        }
    }

    /// The fresh session for `id` alone (no copy of its events): the hot path of a read.
    func session(_ id: SessionID, now: UInt64 = SessionCache.now()) -> SessionInfo? {
        state.withLock { state in
            // Read through the array in place: a generic reader closure would copy the whole
            // node (every reference in it retained and released), a third of a hit's cost.
            guard let slot = freshSlot(id, now: now, in: &state) else { return nil }
            return state.nodes[slot].entry.session
        }
    }

    /// The fresh run of `id`'s newest events alone (no copy of its session).
    func events(_ id: SessionID, now: UInt64 = SessionCache.now()) -> [SSEEvent]? {
        state.withLock { state in
            guard let slot = freshSlot(id, now: now, in: &state) else { return nil }
            return state.nodes[slot].entry.events
        }
    }

    /// The slot of `id`'s entry, marked most recently used; `nil` (and the entry dropped) if it
    /// may no longer be served.
    private func freshSlot(_ id: SessionID, now: UInt64, in state: inout State) -> Int? {
        guard let slot = state.index[id] else { return nil }
        guard now < state.nodes[slot].entry.servedUntil else {
            Self.remove(slot, from: &state)
            return nil
        }
        Self.moveToFront(slot, in: &state)
        return slot
    }

    /// Stores `session` unless the cache holds a newer version. `events: nil` keeps the events
    /// already cached for it.
    func store(_ session: SessionInfo, events: [SSEEvent]? = nil, now: UInt64 = SessionCache.now()) {
        let evicted = state.withLock { state -> Int in
            var kept: [SSEEvent] = events ?? []
            if let slot = state.index[session.id] {
                let old = state.nodes[slot].entry
                if old.session.version > session.version { return 0 }
                if events == nil { kept = old.events }
                Self.remove(slot, from: &state)
            }
            let entry = Entry(
                session: session, events: kept, cachedAt: now, servedUntil: servedUntil(session, cachedAt: now, now: now),
                bytes: Self.estimatedBytes(of: session, events: kept))
            Self.insert(session.id, entry, into: &state)
            return evict(&state)
        }
        if evicted > 0 { onEvict(evicted) }
    }

    /// Changes the cached entry in place, if there is one; `change` returns `false` to drop it.
    func update(_ id: SessionID, now: UInt64 = SessionCache.now(), _ change: (inout Entry) -> Bool) {
        let evicted = state.withLock { state -> Int in
            guard let slot = state.index[id] else { return 0 }
            // In place: a copy of the entry would copy its events on the first change.
            let activity = state.nodes[slot].entry.session.lastActivity
            guard change(&state.nodes[slot].entry) else {
                Self.remove(slot, from: &state)
                return 0
            }
            if state.nodes[slot].entry.session.lastActivity != activity {
                state.nodes[slot].entry.servedUntil = servedUntil(
                    state.nodes[slot].entry.session, cachedAt: state.nodes[slot].entry.cachedAt, now: now)
            }
            let bytes = Self.estimatedBytes(of: state.nodes[slot].entry.session, events: state.nodes[slot].entry.events)
            state.bytes += bytes - state.nodes[slot].entry.bytes
            state.nodes[slot].entry.bytes = bytes
            return evict(&state)
        }
        if evicted > 0 { onEvict(evicted) }
    }

    /// Adds `event` to the cached run of `id`'s newest events, keeping at most `keep`; an event
    /// that does not follow the run's last one starts a new run. In place, and the byte count
    /// changes by the events added and dropped alone: this runs on every append.
    func append(_ event: SSEEvent, to id: SessionID, keep: Int) {
        let evicted = state.withLock { state -> Int in
            guard let slot = state.index[id] else { return 0 }
            var delta = Self.estimatedBytes(of: event)
            if let last = state.nodes[slot].entry.events.last, last.id != event.id - 1 {
                delta -= state.nodes[slot].entry.events.reduce(0) { $0 + Self.estimatedBytes(of: $1) }
                state.nodes[slot].entry.events.removeAll(keepingCapacity: true)
            }
            state.nodes[slot].entry.events.append(event)
            let excess = state.nodes[slot].entry.events.count - max(0, keep)
            if excess > 0 {
                delta -= state.nodes[slot].entry.events.prefix(excess).reduce(0) { $0 + Self.estimatedBytes(of: $1) }
                state.nodes[slot].entry.events.removeFirst(excess)
            }
            state.nodes[slot].entry.bytes += delta
            state.bytes += delta
            return evict(&state)
        }
        if evicted > 0 { onEvict(evicted) }
    }

    /// Drops the entry for `id`. Returns whether there was one.
    @discardableResult
    func remove(_ id: SessionID) -> Bool {
        state.withLock { state in
            guard let slot = state.index[id] else { return false }
            Self.remove(slot, from: &state)
            return true
        }
    }

    /// Drops everything.
    func removeAll() {
        state.withLock { $0 = State() }
    }

    /// The end of an entry's life: the maximum age after it was cached, or the moment its
    /// session's idle time reaches the TTL, whichever comes first.
    private func servedUntil(_ session: SessionInfo, cachedAt: UInt64, now: UInt64) -> UInt64 {
        let aged = cachedAt &+ maxAgeNanoseconds
        guard let ttl else { return aged }
        let remaining = session.lastActivity.timeIntervalSinceNow + ttl
        guard remaining > 0 else { return now }
        return min(aged, now &+ UInt64(min(remaining, 1e9) * 1e9))
    }

    // MARK: List surgery (all under the lock)

    private func evict(_ state: inout State) -> Int {
        var evicted = 0
        while state.index.count > maxEntries || (state.bytes > maxBytes && state.index.count > 1), state.tail >= 0 {
            Self.remove(state.tail, from: &state)
            evicted += 1
        }
        return evicted
    }

    private static func insert(_ key: SessionID, _ entry: Entry, into state: inout State) {
        let node = Node(key: key, entry: entry, previous: -1, next: state.head)
        let slot: Int
        if let reused = state.free.popLast() {
            slot = reused
            state.nodes[slot] = node
        } else {
            slot = state.nodes.count
            state.nodes.append(node)
        }
        if state.head >= 0 { state.nodes[state.head].previous = slot }
        state.head = slot
        if state.tail < 0 { state.tail = slot }
        state.index[key] = slot
        state.bytes += entry.bytes
    }

    private static func unlink(_ slot: Int, in state: inout State) {
        let (previous, next) = (state.nodes[slot].previous, state.nodes[slot].next)
        if previous >= 0 { state.nodes[previous].next = next } else { state.head = next }
        if next >= 0 { state.nodes[next].previous = previous } else { state.tail = previous }
    }

    private static func remove(_ slot: Int, from state: inout State) {
        unlink(slot, in: &state)
        state.index[state.nodes[slot].key] = nil
        state.bytes -= state.nodes[slot].entry.bytes
        // Release the payload now; the slot itself is reused by the next insert.
        state.nodes[slot].entry.session.state = [:]
        state.nodes[slot].entry.events = []
        state.free.append(slot)
    }

    private static func moveToFront(_ slot: Int, in state: inout State) {
        guard state.head != slot else { return }
        unlink(slot, in: &state)
        state.nodes[slot].previous = -1
        state.nodes[slot].next = state.head
        if state.head >= 0 { state.nodes[state.head].previous = slot }
        state.head = slot
        if state.tail < 0 { state.tail = slot }
    }

    // MARK: Sizes

    /// What an entry counts against the byte limit: its JSON content plus a fixed overhead per
    /// entry and per value for the structures around them.
    static func estimatedBytes(of session: SessionInfo, events: [SSEEvent]) -> Int {
        var bytes = 512 + session.id.rawValue.utf8.count + (session.protocolVersion?.utf8.count ?? 0)
        for value in [session.clientInfo, session.clientCapabilities, session.serverCapabilities].compactMap({ $0 }) {
            bytes += value.estimatedBytes
        }
        for (key, value) in session.metadata { bytes += 48 + key.utf8.count + value.estimatedBytes }
        for (key, value) in session.state { bytes += 48 + key.utf8.count + value.estimatedBytes }
        for event in events { bytes += estimatedBytes(of: event) }
        return bytes
    }

    static func estimatedBytes(of event: SSEEvent) -> Int {
        96 + event.stream.rawValue.utf8.count + (event.storedTextCount.map { 32 + $0 } ?? event.data?.estimatedBytes ?? 0)
    }
}

extension JSONValue {
    /// Roughly the memory this value takes: payload bytes plus per-node overhead.
    var estimatedBytes: Int {
        switch self {
        case .null, .bool, .int, .double: return 16
        case .string(let text): return 32 + text.utf8.count
        case .array(let elements): return 32 + elements.reduce(0) { $0 + $1.estimatedBytes }
        case .object(let members): return 64 + members.reduce(0) { $0 + 48 + $1.key.utf8.count + $1.value.estimatedBytes }
        }
    }
}
