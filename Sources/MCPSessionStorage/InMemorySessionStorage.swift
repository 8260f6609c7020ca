import Foundation
import Synchronization

/// Sessions in this process's memory: for development, tests, and single-instance servers that
/// may lose their sessions on restart.
///
/// One `Mutex` guards everything; each call holds it for a few dictionary operations and never
/// across an `await`, so there is no actor hop and no suspension per call.
///
/// ```swift
/// let storage = InMemorySessionStorage()
/// let session = try await storage.createSession()
/// ```
public final class InMemorySessionStorage: SessionStorage {
    /// The in-memory backend's settings.
    public struct Configuration: Sendable {
        /// Sizes, retention and session lifetime.
        public var policy = SessionPolicy()
        /// The most sessions held at once; creating one more throws `limitExceeded`. Default 100 000.
        public var maxSessions = 100_000

        public init(policy: SessionPolicy = SessionPolicy(), maxSessions: Int = 100_000) {
            self.policy = policy
            self.maxSessions = maxSessions
        }
    }

    private struct Entry {
        var info: SessionInfo
        /// The bytes each state key counts against the per-session limit (key plus JSON value).
        var stateSizes: [String: Int]
        var stateBytes: Int
        var events = EventLog()
        var lastEventID: Int64 = 0
        var leases: [String: Lease] = [:]
    }

    /// A session's events, oldest first, trimmed from the front without moving the rest.
    private struct EventLog {
        private var storage: [SSEEvent] = []
        private var head = 0

        var all: ArraySlice<SSEEvent> { storage[head...] }
        var count: Int { storage.count - head }

        mutating func append(_ event: SSEEvent, keeping max: Int) {
            storage.append(event)
            if count > max { head += count - max }
            compactIfSparse()
        }

        mutating func removeAll(before id: Int64) -> Int {
            let cut = index(after: id - 1)
            let removed = cut - head
            head = cut
            compactIfSparse()
            return removed
        }

        /// The position of the first event whose id is greater than `id` (binary search: ids ascend).
        func index(after id: Int64) -> Int {
            var low = head
            var high = storage.count
            while low < high {
                let mid = (low + high) / 2
                if storage[mid].id <= id { low = mid + 1 } else { high = mid }
            }
            return low
        }

        func event(withID id: Int64) -> SSEEvent? {
            let position = index(after: id - 1)
            return position < storage.count && storage[position].id == id ? storage[position] : nil
        }

        private mutating func compactIfSparse() {
            if head > 64 && head * 2 > storage.count {
                storage.removeFirst(head)
                head = 0
            }
        }
    }

    private let configuration: Configuration
    private let sessions = Mutex<[SessionID: Entry]>([:])

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The policy from the configuration.
    public var policy: SessionPolicy { configuration.policy }

    /// Runs `body` on the session's entry under the lock; `sessionNotFound` if there is none.
    private func withEntry<T>(_ id: SessionID, _ body: (inout Entry) throws(SessionStorageError) -> T) throws(SessionStorageError) -> T {
        try sessions.withLock { (sessions: inout [SessionID: Entry]) throws(SessionStorageError) -> T in
            guard sessions[id] != nil else { throw .sessionNotFound(id) }
            // The force-unwrapped subscript mutates the stored entry in place, without a copy.
            return try body(&sessions[id]!)
        }
    }

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let state = try policy.encodeState(fields.state)
        let info = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        return try sessions.withLock { (sessions: inout [SessionID: Entry]) throws(SessionStorageError) -> SessionInfo in
            guard sessions[info.id] == nil else {
                throw SessionStorageError(.versionConflict, "session \(info.id) already exists")
            }
            guard sessions.count < configuration.maxSessions else {
                throw SessionStorageError(.limitExceeded, "the in-memory storage holds its maximum of \(configuration.maxSessions) sessions")
            }
            sessions[info.id] = Entry(info: info, stateSizes: state.sizes, stateBytes: state.total)
            return info
        }
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        sessions.withLock { $0[id]?.info }
    }

    public func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        sessions.withLock { $0[id]?.info.version }
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let state = try policy.encodeState(session.state)
        return try withEntry(session.id) { entry throws(SessionStorageError) in
            guard entry.info.version == session.version else {
                throw SessionStorageError(.versionConflict, "session \(session.id) is at version \(entry.info.version), not \(session.version)")
            }
            var updated = session
            updated.createdAt = entry.info.createdAt
            updated.lastActivity = Date()
            updated.version += 1
            entry.info = updated
            entry.stateSizes = state.sizes
            entry.stateBytes = state.total
            return updated
        }
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let interval = policy.activityWriteInterval.timeInterval
        try withEntry(id) { entry in
            if entry.info.lastActivity < now.addingTimeInterval(-interval) {
                entry.info.lastActivity = now
            }
        }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        sessions.withLock { $0.removeValue(forKey: id) != nil }
    }

    public func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        // Sorted ids make pages stable; administration may afford the sort.
        let ids = sessions.withLock { Array($0.keys) }.sorted()
        let start = cursor.map { cursor in ids.partitionPoint { $0 <= cursor } } ?? 0
        return Array(ids[start...].prefix(max(0, limit)))
    }

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try policy.checkKey(key)
        return try withEntry(id) { $0.info.state[key] }
    }

    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try policy.encodeStateValue(value, forKey: key)
        // Normalise through JSON so reads return exactly what a durable backend would.
        let stored = try JSONValue.decode(data)
        return try withEntry(id) { entry throws(SessionStorageError) in
            let size = SessionPolicy.entryBytes(key: key, value: data)
            let total = entry.stateBytes - (entry.stateSizes[key] ?? 0) + size
            try policy.checkStateTotal(total)
            entry.info.state[key] = stored
            entry.stateSizes[key] = size
            entry.stateBytes = total
            entry.info.version += 1
            entry.info.lastActivity = Date()
            return entry.info.version
        }
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try policy.checkKey(key)
        return try withEntry(id) { entry in
            entry.info.state[key] = nil
            entry.stateBytes -= entry.stateSizes.removeValue(forKey: key) ?? 0
            entry.info.version += 1
            entry.info.lastActivity = Date()
            return entry.info.version
        }
    }

    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try policy.encodeEvent(event)
        let max = policy.maxEventsPerSession
        return try withEntry(id) { entry in
            entry.lastEventID += 1
            let stored = SSEEvent(id: entry.lastEventID, event: event, encodedData: data, timestamp: Date())
            entry.events.append(stored, keeping: max)
            return stored
        }
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try withEntry(id) { entry in
            guard let cursor = entry.events.event(withID: eventID) else { return [] }
            let later = entry.events.all[entry.events.index(after: eventID)...].lazy.filter { $0.stream == cursor.stream }
            return Array(later.prefix(limit ?? .max))
        }
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        try withEntry(id) { entry in
            let later = entry.events.all[entry.events.index(after: eventID)...].lazy.filter { $0.stream == stream }
            return Array(later.prefix(limit ?? .max))
        }
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        try withEntry(id) { $0.events.event(withID: eventID) }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        try withEntry(id) { Array($0.events.all.suffix(Swift.max(0, limit))) }
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        try withEntry(id) { $0.events.removeAll(before: eventID) }
    }

    public func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? {
        try policy.checkLease(name)
        return try withEntry(id) { $0.leases[name] }
    }

    public func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try policy.checkLease(name, expected, new)
        return try withEntry(id) { entry in
            guard entry.leases[name] == expected else { return false }
            entry.leases[name] = new
            return true
        }
    }

    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        sessions.withLock { sessions in
            let expired = sessions.filter { $0.value.info.lastActivity < cutoff }.map(\.key)
            for id in expired { sessions[id] = nil }
            return expired
        }
    }

    public func sessionCount() async throws(SessionStorageError) -> Int {
        sessions.withLock { $0.count }
    }

    public func eventCount() async throws(SessionStorageError) -> Int {
        sessions.withLock { $0.values.reduce(0) { $0 + $1.events.count } }
    }

    public func maintenance() async throws(SessionStorageError) {}
}

extension Array where Element == SessionID {
    /// The index of the first element for which `belongs` is false, in a sorted array where it
    /// holds for a prefix.
    fileprivate func partitionPoint(_ belongs: (SessionID) -> Bool) -> Int {
        var (low, high) = (0, count)
        while low < high {
            let mid = (low + high) / 2
            if belongs(self[mid]) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
