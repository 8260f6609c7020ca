import MCPSessionStorage
import Metrics
import Synchronization

/// Wakes the open streams of a session when one of its events is appended: by this instance
/// directly, by another instance through the change bus.
///
/// A wake-up carries no data: the stream reads what is new from storage, so a lost or
/// duplicated wake-up costs at most one read, and the poll interval bounds a lost one.
final class StreamHub: Sendable {
    private struct Sessions {
        var waiters: [SessionID: [ObjectIdentifier: StreamWaiter]] = [:]
    }
    private let sessions = Mutex(Sessions())
    /// `mcp_server_open_streams`: the streams open on this instance.
    private let openStreams = Gauge(label: "mcp_server_open_streams")

    /// A waiter for `id`'s events, registered until `remove`.
    func waiter(for id: SessionID) -> StreamWaiter {
        let waiter = StreamWaiter()
        let count = sessions.withLock { sessions in
            sessions.waiters[id, default: [:]][ObjectIdentifier(waiter)] = waiter
            return sessions.waiters.values.reduce(0) { $0 + $1.count }
        }
        openStreams.record(count)
        return waiter
    }

    func remove(_ waiter: StreamWaiter, for id: SessionID) {
        let count = sessions.withLock { sessions in
            sessions.waiters[id]?[ObjectIdentifier(waiter)] = nil
            if sessions.waiters[id]?.isEmpty == true { sessions.waiters[id] = nil }
            return sessions.waiters.values.reduce(0) { $0 + $1.count }
        }
        openStreams.record(count)
    }

    /// How many streams are open here.
    var count: Int { sessions.withLock { $0.waiters.values.reduce(0) { $0 + $1.count } } }

    /// The sessions with a stream open here.
    var openSessions: Set<SessionID> { sessions.withLock { Set($0.waiters.keys) } }

    /// Whether a stream of `id` is open here.
    func isFollowing(_ id: SessionID) -> Bool { sessions.withLock { $0.waiters[id] != nil } }

    /// Something was appended to `id`'s events.
    func wake(_ id: SessionID) {
        for waiter in sessions.withLock({ $0.waiters[id].map { Array($0.values) } ?? [] }) { waiter.signal() }
    }

    /// `id` was deleted: its streams end.
    func close(_ id: SessionID) {
        for waiter in sessions.withLock({ $0.waiters[id].map { Array($0.values) } ?? [] }) { waiter.close() }
    }

    /// Messages may have been lost (the bus reconnected): every stream reads again.
    func wakeAll() {
        for waiter in sessions.withLock({ $0.waiters.values.flatMap(\.values) }) { waiter.signal() }
    }

    /// Shutdown: every stream ends.
    func closeAll() {
        for waiter in sessions.withLock({ $0.waiters.values.flatMap(\.values) }) { waiter.close() }
    }
}

/// One stream's wake-up flag: a signal before `wait` is kept, so none is missed between a
/// stream's read and its wait.
final class StreamWaiter: Sendable {
    private struct State {
        var signaled = false
        var closed = false
        var continuation: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    var isClosed: Bool { state.withLock { $0.closed } }

    func signal() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.continuation = nil }
            if state.continuation == nil { state.signaled = true }
            return state.continuation
        }?.resume()
    }

    func close() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            defer { state.continuation = nil }
            return state.continuation
        }?.resume()
    }

    /// Returns at the next signal (or at once if one came since the last wait), at close, at
    /// cancellation, or after `timeout`.
    func wait(upTo timeout: Duration) async {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.signal()
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.signaled || state.closed {
                        state.signaled = false
                        return true
                    }
                    state.continuation = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }
}
