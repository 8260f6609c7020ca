import Synchronization

/// The error thrown when an operation runs past its deadline.
@_spi(Backend)
public struct TimeoutError: Error, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "timed out after \(timeout)" }
}

/// Bounds how long network calls may take, with one shared timer instead of one per call.
///
/// A `Task.sleep` racing every call (a task group with a timer child) costs two child tasks
/// and a timer registration per call, a large share of a PostgreSQL round trip. The
/// watchdog instead records each call's deadline in a table; one background loop wakes every
/// `resolution` and cancels the calls past theirs. A call therefore fails at most `resolution`
/// after its deadline, which is what "no hang past the configured timeout" needs.
@_spi(Backend)
public final class DeadlineWatchdog: Sendable {
    private struct State {
        var nextID: UInt64 = 0
        var running: [UInt64: (deadline: ContinuousClock.Instant, cancel: @Sendable () -> Void)] = [:]
        var loop: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private let resolution: Duration

    public init(resolution: Duration = .milliseconds(100)) {
        self.resolution = resolution
    }

    deinit {
        state.withLock { $0.loop?.cancel() }
    }

    /// Runs `operation` in a task of its own and returns its result, or throws `TimeoutError`
    /// once `timeout` has passed, at which point the operation is cancelled. The caller is
    /// answered at the deadline even if the operation ignores cancellation; the operation then
    /// finishes in the background. Cancelling the caller cancels the operation.
    public func run<T: Sendable>(
        timeout: Duration, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = FirstOutcome<T>()
        let task = Task {
            do { outcome.resolve(.success(try await operation())) } catch { outcome.resolve(.failure(error)) }
        }
        let deadline = ContinuousClock.now + timeout
        let expire: @Sendable () -> Void = {
            task.cancel()
            outcome.resolve(.failure(TimeoutError(timeout: timeout)))
        }
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            state.running[state.nextID] = (deadline, expire)
            if state.loop == nil { state.loop = startLoop() }
            return state.nextID
        }
        defer { _ = state.withLock { $0.running.removeValue(forKey: id) } }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            task.cancel()
            outcome.resolve(.failure(CancellationError()))
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
