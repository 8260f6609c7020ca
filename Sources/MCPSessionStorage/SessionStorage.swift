import Foundation

/// Where an MCP server keeps its sessions, their state and their SSE events.
///
/// Every backend (``InMemorySessionStorage``, SQLite, PostgreSQL, …) meets the same contract,
/// checked by the conformance suite in `MCPSessionStorageTesting`:
///
/// - Every write to a session raises its ``SessionInfo/version``; creation gives version 1.
/// - Event ids are assigned by the storage and strictly increase within a session, across all
///   its streams; ``events(in:after:limit:)`` replays only the cursor's own stream.
/// - At most ``SessionPolicy/maxEventsPerSession`` events are kept per session; the oldest go.
/// - Every error is a ``SessionStorageError``; a limit or bad input writes nothing.
/// - Deleting or expiring a session removes its state and events with it.
///
/// The requirements come in two groups. The **hot path** (sessions, state, events) runs on
/// every request: each is one bounded operation, without scans. **Administration** (listing,
/// counting, expiring, maintenance) runs in the background and is paginated or bounded by the
/// data it removes.
///
/// Requirements that take a session id throw ``SessionStorageError/Code/sessionNotFound`` when
/// the session does not exist, except the reads ``session(_:)`` (which returns `nil`) and
/// ``deleteSession(_:)`` (which returns `false`).
///
/// To write a backend, see the backend kit (`@_spi(Backend) import MCPSessionStorage`) and run
/// the conformance suite against it.
public protocol SessionStorage: Sendable {
    /// The policy this storage enforces: sizes, retention, and how long sessions live.
    var policy: SessionPolicy { get }

    // MARK: Sessions

    /// Stores a new session at version 1 and returns it.
    /// - Parameters:
    ///   - id: The id to use; `nil` (the usual case) assigns a fresh UUID v7.
    ///   - fields: Everything else the session starts with.
    /// - Throws: `versionConflict` when `id` is taken; `limitExceeded` when the state is too large.
    func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo

    /// The session with this id, or `nil` if there is none. Does not count as activity.
    func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo?

    /// The stored version of the session, or `nil` if there is none: the cheapest read there
    /// is, which a front uses to confirm that what it holds is current.
    func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64?

    /// The session as the durable tier holds it now: every write acknowledged before this call
    /// began, on any instance, is in it. A server calls it once per request, before its other
    /// reads. The default is ``session(_:)``, which is that already for every storage without a
    /// front; ``TieredSessionStorage`` confirms its copy with ``sessionVersion(_:)``.
    func currentSession(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo?

    /// Replaces a session's fields and state with `session`'s, if the stored version is still
    /// `session.version`, and returns the stored result (version raised by one).
    /// - Throws: `versionConflict` when the session changed since `session` was read.
    func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo

    /// Records activity: sets `lastActivity` to `now` if the stored one is older than
    /// ``SessionPolicy/activityWriteInterval`` (otherwise writes nothing). Does not raise the version.
    func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError)

    /// Deletes a session with its state and events.
    /// - Returns: Whether it existed.
    @discardableResult
    func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool

    // MARK: State

    /// One state value, or `nil` when the key is not set.
    func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue?

    /// Sets one state key, leaving the others as they are. Concurrent writers to different keys
    /// never lose each other's keys.
    /// - Returns: The session's new version.
    @discardableResult
    func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64

    /// Removes one state key.
    /// - Returns: The session's new version (raised even if the key was absent).
    @discardableResult
    func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64

    // MARK: Events

    /// Appends an event, assigning its id and timestamp, and trims the session's oldest events
    /// beyond ``SessionPolicy/maxEventsPerSession``.
    @discardableResult
    func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent

    /// The events after the cursor event `eventID` **on the cursor's own stream**, oldest first,
    /// at most `limit` of them. A cursor that names no event of this session (another session's,
    /// or one already trimmed) returns nothing.
    func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent]

    /// The events of `stream` with ids above `eventID`, oldest first, at most `limit`; the id
    /// need not name a stored event. How a server replays a stream from a position it announced
    /// without storing anything (a priming event), and how an open stream follows new events:
    /// answer it from an index on the stream, not by scanning the session's events.
    func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent]

    /// The stored event `eventID` of the session, or `nil` (never stored, or trimmed): how a
    /// server finds the stream a `Last-Event-ID` belongs to.
    func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent?

    /// The session's latest `limit` events on all streams, oldest first.
    func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent]

    /// Deletes the session's events with ids below `eventID`.
    /// - Returns: How many went.
    @discardableResult
    func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int

    // MARK: Leases

    /// The lease `name` of the session, or `nil` when nobody holds it. Leases are not session
    /// data: reading or swapping one neither raises the version nor counts as activity, and
    /// deleting the session deletes its leases.
    func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease?

    /// Replaces the lease `name` of the session with `new` (`nil`: releases it), if it is still
    /// `expected` (`nil`: nobody holds it), as one atomic compare-and-swap: of concurrent swaps
    /// from the same `expected`, at most one succeeds.
    /// - Returns: Whether it swapped.
    /// - Throws: `invalidInput` for a malformed name or holder.
    func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool

    // MARK: Administration

    /// One page of stored session ids, in an order of the backend's choosing that stays the same
    /// from page to page: the ids after `cursor` (`nil`: from the start), at most `limit`.
    /// Pass the last id of a page as the next page's cursor; a page shorter than `limit` is the last.
    func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID]

    /// Deletes every session whose `lastActivity` is before `cutoff`, with its state and events.
    /// - Returns: The ids removed.
    @discardableResult
    func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID]

    /// How many sessions are stored.
    func sessionCount() async throws(SessionStorageError) -> Int

    /// How many events are stored, over all sessions.
    func eventCount() async throws(SessionStorageError) -> Int

    /// Backend housekeeping (a WAL checkpoint, statistics); safe to call at any time.
    func maintenance() async throws(SessionStorageError)
}

extension SessionStorage {
    public func currentSession(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        try await session(id)
    }

    /// Stores a new session with a fresh UUID v7 id.
    public func createSession(_ fields: NewSession = NewSession()) async throws(SessionStorageError) -> SessionInfo {
        try await createSession(id: nil, fields)
    }

    /// Records activity now.
    public func touchSession(_ id: SessionID) async throws(SessionStorageError) {
        try await touchSession(id, at: Date())
    }

    /// The events after `eventID` on its stream, all of them.
    public func events(in id: SessionID, after eventID: Int64) async throws(SessionStorageError) -> [SSEEvent] {
        try await events(in: id, after: eventID, limit: nil)
    }

    /// Every stored session id, read page by page (`pageSize` at a time). For administration:
    /// it reads the whole table.
    public func allSessionIDs(pageSize: Int = 1000) async throws(SessionStorageError) -> [SessionID] {
        var ids: [SessionID] = []
        var cursor: SessionID?
        while true {
            let page = try await listSessions(after: cursor, limit: max(1, pageSize))
            ids += page
            guard page.count >= max(1, pageSize), let last = page.last else { return ids }
            cursor = last
        }
    }

    /// Reads one state value as `T`; `nil` when the key is not set.
    public func state<T: Decodable & Sendable>(_ key: String, as type: T.Type = T.self, in id: SessionID) async throws(SessionStorageError) -> T? {
        guard let value = try await stateValue(forKey: key, in: id) else { return nil }
        return try value.decode(as: T.self)
    }

    /// Stores any `Encodable` value under `key`.
    /// - Returns: The session's new version.
    @discardableResult
    public func setState(_ value: some Encodable & Sendable, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try await setState(try JSONValue(encoding: value), forKey: key, in: id)
    }

    /// Reads a session, applies `change` to it and writes it back, retrying on
    /// `versionConflict` up to `attempts` times.
    /// - Returns: The stored result.
    public func modifySession(
        _ id: SessionID, attempts: Int = 5, _ change: (inout SessionInfo) throws(SessionStorageError) -> Void
    ) async throws(SessionStorageError) -> SessionInfo {
        var lastError = SessionStorageError(.versionConflict, "no attempt made")
        for _ in 0..<max(1, attempts) {
            guard var session = try await session(id) else { throw .sessionNotFound(id) }
            try change(&session)
            do {
                return try await updateSession(session)
            } catch  where error.code == .versionConflict {
                lastError = error
            }
        }
        throw lastError
    }
}
