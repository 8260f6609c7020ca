import MCPSessionStorage
import Synchronization

/// The tool calls running on this instance, so a client's `notifications/cancelled` (and
/// shutdown) can stop them. A call outlives its HTTP response: a dropped stream does not stop it.
final class RunningCalls: Sendable {
    private struct Key: Hashable {
        var session: SessionID
        var stream: StreamID
    }
    private let running = Mutex<[Key: Task<Void, Never>]>([:])

    /// Runs `work` detached from the caller, until it ends or is cancelled.
    func start(session: SessionID, stream: StreamID, _ work: @escaping @Sendable () async -> Void) {
        let key = Key(session: session, stream: stream)
        running.withLock { running in
            running[key] = Task { [weak self] in
                await work()
                _ = self?.running.withLock { $0.removeValue(forKey: key) }
            }
        }
    }

    /// How many calls are running here.
    var count: Int { running.withLock { $0.count } }

    func cancel(session: SessionID, stream: StreamID) {
        running.withLock { $0[Key(session: session, stream: stream)] }?.cancel()
    }

    func cancelAll() {
        for task in running.withLock({ Array($0.values) }) { task.cancel() }
    }
}
