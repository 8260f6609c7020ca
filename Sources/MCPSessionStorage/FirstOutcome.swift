import Synchronization

/// A result that several parties race to give (an operation, its deadline, its caller's
/// cancellation), awaited by one task: the first `resolve` wins, later ones are ignored.
@_spi(Backend)
public final class FirstOutcome<T: Sendable>: Sendable {
    private enum State {
        case pending
        case waiting(CheckedContinuation<T, any Error>)
        case resolved(Result<T, any Error>)
    }

    private let state = Mutex(State.pending)

    public init() {}

    /// Gives the result, if none was given yet, and wakes the waiting task.
    public func resolve(_ result: Result<T, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<T, any Error>? in
            switch state {
            case .pending:
                state = .resolved(result)
                return nil
            case .waiting(let continuation):
                state = .resolved(result)
                return continuation
            case .resolved:
                return nil
            }
        }
        waiter?.resume(with: result)
    }

    /// The first result given, once there is one. Call it once.
    public func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                if case .resolved(let result) = state { return result }
                state = .waiting(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
