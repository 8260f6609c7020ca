import Foundation
import MCPSessionStorageTesting
import Synchronization
import Testing

@testable import MCPSessionStorage

@Suite("TieredSessionStorage")
struct TieredStorageTests {
    @Test("conformance over InMemory, no bus", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in TieredSessionStorage(durable: InMemorySessionStorage(configuration: .init(policy: policy))) }
    }

    @Test("conformance over InMemory with a running bus", arguments: SessionStorageConformance.checks)
    func conformanceWithBus(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in
            let storage = TieredSessionStorage(
                durable: InMemorySessionStorage(configuration: .init(policy: policy)), bus: InProcessChangeBus(hub: .init()))
            try await waitUntil { storage.isFrontEnabled }
            return storage
        }
    }

    @Test("a front hit does no durable read; a write through updates the front")
    func hitsAndWriteThrough() async throws {
        let durable = CountingStorage()
        let tiered = TieredSessionStorage(durable: durable)
        let session = try await tiered.createSession()
        for _ in 0..<10 { _ = try await tiered.session(session.id) }
        #expect(durable.reads.load(ordering: .relaxed) == 0)
        try await tiered.setState("v", forKey: "k", in: session.id)
        #expect(try await tiered.session(session.id)?.state == ["k": "v"])
        #expect(try await tiered.stateValue(forKey: "k", in: session.id) == "v")
        #expect(durable.reads.load(ordering: .relaxed) == 0)
        #expect(tiered.front.count == 1)
    }

    @Test("concurrent misses on one session share one durable read")
    func singleFlight() async throws {
        let durable = CountingStorage(delay: .milliseconds(50))
        let id = try await durable.createSession().id
        let tiered = TieredSessionStorage(durable: durable)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await tiered.session(id) } }
            try await group.waitForAll()
        }
        #expect(durable.reads.load(ordering: .relaxed) == 1)
    }

    @Test("a reader who just wrote never joins a load that started before the write")
    func readYourWritesDuringLoad() async throws {
        let durable = CountingStorage(delay: .milliseconds(500), delayAfterRead: true)
        let id = try await durable.createSession().id
        let tiered = TieredSessionStorage(durable: durable)
        let early = Task { try await tiered.session(id) }  // reads version 1, answers 500 ms later
        try await waitUntil { durable.reads.load(ordering: .relaxed) == 1 }
        let version = try await tiered.setState("mine", forKey: "k", in: id)
        let mine = try #require(try await tiered.session(id))
        #expect(mine.version == version)
        #expect(mine.state["k"] == "mine")
        #expect(try await early.value?.version == 1)
        // The early load's old snapshot was not cached either.
        #expect(try await tiered.session(id)?.version == version)
    }

    @Test("a failed durable write leaves the front as it was")
    func failedWrite() async throws {
        let durable = InMemorySessionStorage(configuration: .init(policy: SessionPolicy(maxStateValueBytes: 10)))
        let tiered = TieredSessionStorage(durable: durable)
        let id = try await tiered.createSession(NewSession(state: ["k": "old"])).id
        await #expect(throws: SessionStorageError.self) { try await tiered.setState(.string(String(repeating: "x", count: 50)), forKey: "k", in: id) }
        #expect(tiered.front.entry(id)?.session.state == ["k": "old"])
        #expect(tiered.front.entry(id)?.session.version == 1)
    }

    @Test("the front is bounded by entries and by bytes, evicting the least recently used")
    func bounds() throws {
        let cache = SessionCache(maxEntries: 3, maxBytes: 1 << 30, maxAge: .seconds(60))
        let ids = (0..<4).map { _ in SessionID.generate() }
        for id in ids.prefix(3) { cache.store(SessionInfo(id: id, version: 1)) }
        _ = cache.entry(ids[0])  // now most recent
        cache.store(SessionInfo(id: ids[3], version: 1))
        #expect(cache.count == 3)
        #expect(cache.entry(ids[1]) == nil)
        #expect(cache.entry(ids[0]) != nil)

        let small = SessionCache(maxEntries: 1000, maxBytes: 20_000, maxAge: .seconds(60))
        for _ in 0..<100 {
            small.store(SessionInfo(id: .generate(), state: ["blob": .string(String(repeating: "x", count: 1000))], version: 1))
        }
        #expect(small.bytes <= 20_000)
        #expect(small.count < 20)
    }

    @Test("an entry older than the maximum age is a miss, and an older version never replaces a newer one")
    func ageAndVersions() throws {
        let cache = SessionCache(maxEntries: 10, maxBytes: 1 << 20, maxAge: .seconds(5))
        let id = SessionID.generate()
        let start = SessionCache.now()
        let second: UInt64 = 1_000_000_000
        cache.store(SessionInfo(id: id, version: 3), now: start)
        #expect(cache.entry(id, now: start + 4 * second)?.session.version == 3)
        cache.store(SessionInfo(id: id, version: 2), now: start)
        #expect(cache.session(id, now: start + 4 * second)?.version == 3)
        #expect(cache.entry(id, now: start + 6 * second) == nil)
        #expect(cache.count == 0)
    }

    @Test("replay after a recent cursor is served from memory")
    func replayFromFront() async throws {
        let durable = CountingStorage()
        let tiered = TieredSessionStorage(durable: durable)
        let id = try await tiered.createSession().id
        let stream = try StreamID.request(1)
        var stored: [SSEEvent] = []
        for n in 0..<5 { stored.append(try await tiered.appendEvent(NewEvent(stream: stream, data: .int(Int64(n))), to: id)) }
        #expect(try await tiered.events(in: id, after: stored[1].id).map(\.id) == stored.suffix(3).map(\.id))
        #expect(durable.eventReads.load(ordering: .relaxed) == 0)
    }
}

@Suite("Tiered storages sharing a bus")
struct TieredBusTests {
    /// Two instances over one durable store, each running its bus consumer.
    func pair(hub: InProcessChangeBus.Hub = .init()) async throws -> (TieredSessionStorage, TieredSessionStorage, InProcessChangeBus.Hub) {
        let durable = InMemorySessionStorage()
        let a = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "a"))
        let b = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "b"))
        try await waitUntil { a.isFrontEnabled && b.isFrontEnabled }
        return (a, b, hub)
    }

    @Test("a write on one instance is seen by the other once the message arrives")
    func propagation() async throws {
        let (a, b, _) = try await pair()
        let id = try await a.createSession().id
        #expect(try await b.session(id)?.version == 1)  // now cached on b
        try await a.setState("new", forKey: "k", in: id)
        try await waitUntil { b.front.entry(id) == nil }
        #expect(try await b.stateValue(forKey: "k", in: id) == "new")
        _ = try await a.deleteSession(id)
        try await waitUntil { b.front.entry(id) == nil }
        #expect(try await b.session(id) == nil)
    }

    @Test("a write whose answer is lost (unavailable, yet committed) leaves no stale copy on either instance")
    func lostAnswer() async throws {
        let durable = CountingStorage()
        let hub = InProcessChangeBus.Hub()
        let a = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "a"))
        let b = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "b"))
        try await waitUntil { a.isFrontEnabled && b.isFrontEnabled }
        let id = try await a.createSession(NewSession(state: ["k": "old"])).id
        #expect(try await a.stateValue(forKey: "k", in: id) == "old")
        #expect(try await b.stateValue(forKey: "k", in: id) == "old")  // cached on both

        durable.loseAnswers.store(true, ordering: .relaxed)
        await #expect(throws: SessionStorageError.self) { try await a.setState("new", forKey: "k", in: id) }
        durable.loseAnswers.store(false, ordering: .relaxed)
        #expect(a.front.entry(id) == nil)
        try await waitUntil { b.front.entry(id) == nil }
        #expect(try await a.stateValue(forKey: "k", in: id) == "new")
        #expect(try await b.stateValue(forKey: "k", in: id) == "new")
    }

    @Test("a request's first read sees another instance's write even when its message is late or lost")
    func currentSessionConfirmsTheVersion() async throws {
        let durable = CountingStorage()
        let hub = InProcessChangeBus.Hub()
        let a = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "a"))
        let b = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "b"))
        let id = try await a.createSession(NewSession(state: ["k": "old"])).id
        #expect(try await b.stateValue(forKey: "k", in: id) == "old")  // cached on b
        hub.dropMessages(1)  // as if b's database connection had not heard of the write yet
        try await a.setState("new", forKey: "k", in: id)
        #expect(try await b.session(id)?.state["k"] == "old", "the plain read is a front hit, stale until the bus says otherwise")
        let current = try #require(try await b.currentSession(id))
        #expect(current.state["k"] == "new")
        #expect(try await b.stateValue(forKey: "k", in: id) == "new", "the request's later reads hit the refreshed front")
        // Current and cached: one version read, no session read.
        let reads = durable.reads.load(ordering: .relaxed)
        #expect(try await b.currentSession(id)?.version == current.version)
        #expect(durable.reads.load(ordering: .relaxed) == reads)

        var eventual = TieredSessionStorage.Configuration()
        eventual.consistency = .eventual
        let c = TieredSessionStorage(durable: durable, front: eventual, bus: InProcessChangeBus(hub: hub, instanceID: "c"))
        #expect(try await c.currentSession(id)?.state["k"] == "new")
        let versions = durable.versionReads.load(ordering: .relaxed)
        _ = try await c.currentSession(id)
        #expect(durable.versionReads.load(ordering: .relaxed) == versions, "eventual: no version read")
    }

    @Test("a request's later reads see what its first read confirmed, even when a concurrent request's load replaced its own")
    func currentSessionDropsTheStaleCopy() async throws {
        // Found by scripts/faults (Docs/Faults.md): with one instance's bus stalled, two clients
        // of one session reading there at once, and one of them read a value older than its own
        // acknowledged write.
        let durable = CountingStorage(delay: .milliseconds(300))
        let hub = InProcessChangeBus.Hub()
        let a = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "a"))
        let b = TieredSessionStorage(durable: durable, bus: InProcessChangeBus(hub: hub, instanceID: "b"))
        try await waitUntil { a.isFrontEnabled && b.isFrontEnabled }
        let id = try await a.createSession(NewSession(state: ["k": "old"])).id
        #expect(try await b.stateValue(forKey: "k", in: id) == "old")  // cached on b
        hub.dropMessages(1)  // b does not hear of the write: its bus is stalled
        try await a.setState("new", forKey: "k", in: id)

        // A request on b: its first read finds the copy behind and loads (slowly) ...
        let request = Task {
            _ = try await b.currentSession(id)
            return try await b.stateValue(forKey: "k", in: id)
        }
        try await waitUntil { durable.reads.load(ordering: .relaxed) >= 2 }
        // ... while a second request's first read invalidates that load, so it is not stored.
        let second = Task { try await b.currentSession(id)?.state["k"] }
        #expect(try await request.value == "new")
        #expect(try await second.value == "new")
    }

    @Test("a gap in an origin's sequence flushes the front")
    func gapFlushes() async throws {
        let (a, b, hub) = try await pair()
        let first = try await a.createSession().id
        let second = try await a.createSession().id
        for _ in 0..<100 where b.front.count < 2 {
            _ = try await b.session(first)
            _ = try await b.session(second)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(b.front.count == 2)
        hub.dropMessages(1)
        try await a.setState(1, forKey: "k", in: first)  // lost: b would serve a stale `first`
        try await a.setState(1, forKey: "k", in: second)  // arrives after a hole
        try await waitUntil { b.front.count == 0 }
        #expect(try await b.stateValue(forKey: "k", in: first) == 1)
    }

    @Test("after the bus bounces, no entry cached before it is served")
    func reconnectFlushes() async throws {
        let (a, b, hub) = try await pair()
        let id = try await a.createSession().id
        // A load that overlaps a's create message is (rightly) not cached; load until one is.
        for _ in 0..<100 where b.front.count == 0 {
            _ = try await b.session(id)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(b.front.count == 1)
        hub.bounce()
        try await waitUntil { b.front.count == 0 && b.isFrontEnabled }
    }
}

/// Waits up to five seconds for `condition`.
func waitUntil(_ condition: @escaping @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw SessionStorageError(.unavailable, "condition not met in 5 s") }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// An in-memory store that counts its reads, can be slow, and can lose its answers: to observe
/// what the tier asks of the durable tier.
final class CountingStorage: SessionStorage {
    let inner = InMemorySessionStorage()
    let reads = Atomic<Int>(0)
    let eventReads = Atomic<Int>(0)
    let versionReads = Atomic<Int>(0)
    /// Writes commit, then fail as `unavailable`: a connection lost before the answer arrived.
    let loseAnswers = Atomic<Bool>(false)
    let delay: Duration
    /// Read first, then wait: the result is a snapshot from before the wait, as a slow network
    /// would deliver it.
    let delayAfterRead: Bool

    init(delay: Duration = .zero, delayAfterRead: Bool = false) {
        self.delay = delay
        self.delayAfterRead = delayAfterRead
    }

    var policy: SessionPolicy { inner.policy }

    func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        if delayAfterRead {
            let snapshot = try await inner.session(id)
            reads.add(1, ordering: .relaxed)  // counted once the snapshot is taken
            try? await Task.sleep(for: delay)
            return snapshot
        }
        reads.add(1, ordering: .relaxed)
        if delay > .zero { try? await Task.sleep(for: delay) }
        return try await inner.session(id)
    }

    func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        versionReads.add(1, ordering: .relaxed)
        return try await inner.sessionVersion(id)
    }

    func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        eventReads.add(1, ordering: .relaxed)
        return try await inner.events(in: id, after: eventID, limit: limit)
    }

    func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        try await inner.createSession(id: id, fields)
    }
    func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo { try await inner.updateSession(session) }
    func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) { try await inner.touchSession(id, at: now) }
    func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool { try await inner.deleteSession(id) }
    func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        try await inner.listSessions(after: cursor, limit: limit)
    }
    func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        reads.add(1, ordering: .relaxed)
        return try await inner.stateValue(forKey: key, in: id)
    }
    func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let version = try await inner.setState(value, forKey: key, in: id)
        if loseAnswers.load(ordering: .relaxed) { throw SessionStorageError(.unavailable, "the answer to a committed write was lost") }
        return version
    }
    func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try await inner.removeState(forKey: key, in: id)
    }
    func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent { try await inner.appendEvent(event, to: id) }
    func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        eventReads.add(1, ordering: .relaxed)
        return try await inner.events(in: id, stream: stream, after: eventID, limit: limit)
    }
    func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        eventReads.add(1, ordering: .relaxed)
        return try await inner.event(eventID, in: id)
    }
    func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        eventReads.add(1, ordering: .relaxed)
        return try await inner.recentEvents(in: id, limit: limit)
    }
    func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        try await inner.deleteEvents(in: id, before: eventID)
    }
    func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] { try await inner.expireSessions(olderThan: cutoff) }
    func sessionCount() async throws(SessionStorageError) -> Int { try await inner.sessionCount() }
    func eventCount() async throws(SessionStorageError) -> Int { try await inner.eventCount() }
    func maintenance() async throws(SessionStorageError) {}
    func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? { try await inner.lease(name, in: id) }
    func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try await inner.swapLease(name, in: id, expected: expected, new: new)
    }
}
