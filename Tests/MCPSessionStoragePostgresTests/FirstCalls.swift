import Synchronization

/// Lets at most `permits` storages make their first call at a time; the others wait their turn
/// in order, outside any storage call.
///
/// A storage's first call opens its pool's connections and migrates its fresh schema, a dozen
/// round trips of DDL whose catalog changes every other backend must take in. Hundreds of
/// conformance checks start at once, each on a schema of its own: migrating them all together
/// on two cores kept the server busy for longer than one call's timeout, and the checks failed
/// with `unavailable` before doing anything they test. Queued here, each first call runs in a
/// quiet moment, and every later call is timed as before.
final class FirstCalls: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(permits: Int) {
        state = Mutex(State(free: permits))
    }

    /// Runs `work` once a permit is free.
    func run<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await work()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                guard state.free == 0 else {
                    state.free -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
