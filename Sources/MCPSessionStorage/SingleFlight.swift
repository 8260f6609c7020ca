import Synchronization

/// Concurrent loads of one session share one durable read, and a load that may have read what
/// a write replaced is not cached.
///
/// A caller joins a load in flight only if nothing invalidated it: a load that raced a write
/// (here, or another instance's, heard on the bus) may return what the write replaced, and a
/// caller who made that write must see it. An invalidated load's result is still returned to
/// the callers already waiting on it, since they started before the write, but not cached.
final class SingleFlight: Sendable {
    /// What a load gave: its outcome, and whether it may be cached.
    struct Outcome: Sendable {
        var result: Result<SessionInfo?, SessionStorageError>
        /// Whether nothing invalidated the load while it ran; only the caller who started it is told so.
        var cacheable: Bool
        /// Whether the caller joined a load another caller started.
        var joined: Bool
    }

    private struct Load {
        let task: Task<SessionInfo?, any Error>
        /// Tells this load from a later one for the same session.
        let token: UInt64
        var invalidated = false
    }
    private let loads = Mutex<[SessionID: Load]>([:])
    private let nextToken = Atomic<UInt64>(0)

    /// Runs `read` for `id`, or joins the clean load already running for it.
    func load(_ id: SessionID, _ read: @escaping @Sendable () async throws -> SessionInfo?) async -> Outcome {
        let (task, token, joined) = loads.withLock { loads -> (Task<SessionInfo?, any Error>, UInt64, Bool) in
            if let running = loads[id], !running.invalidated { return (running.task, running.token, true) }
            let task = Task { try await read() }
            let token = nextToken.add(1, ordering: .relaxed).newValue
            loads[id] = Load(task: task, token: token)
            return (task, token, false)
        }
        let result = await task.result.mapError { error in
            error as? SessionStorageError ?? SessionStorageError(.unavailable, "loading session \(id)", underlying: error)
        }
        guard !joined else { return Outcome(result: result, cacheable: false, joined: true) }
        // The caller that started the load retires it (unless a newer load replaced it).
        let clean = loads.withLock { loads -> Bool in
            guard let load = loads[id], load.token == token else { return false }
            loads[id] = nil
            return !load.invalidated
        }
        return Outcome(result: result, cacheable: clean, joined: false)
    }

    /// Marks the load of `id` in flight, if any: its result will not be cached, and nobody joins it.
    func invalidate(_ id: SessionID) {
        loads.withLock { $0[id]?.invalidated = true }
    }

    /// Marks every load in flight.
    func invalidateAll() {
        loads.withLock { loads in
            for id in loads.keys { loads[id]!.invalidated = true }
        }
    }
}
