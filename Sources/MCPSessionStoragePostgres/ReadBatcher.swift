import MCPSessionStorage
import Synchronization

/// Lets concurrent reads of different sessions share one round trip.
///
/// A caller that finds a free slot (fewer than `maxInFlight` batches running) leads: it takes
/// every id waiting, itself included, runs one query for all of them, and hands each waiter
/// its row. Callers arriving while every slot is busy wait; when a batch ends, its leader hands
/// the lead to one of them, who takes everyone waiting by then. A lone caller never waits and
/// runs a batch of one, so the batching costs nothing when there is nothing to batch.
final class ReadBatcher<Value: Sendable>: Sendable {
    typealias Fetch = @Sendable ([SessionID]) async throws -> [SessionID: Value]

    private enum Outcome {
        case value(Value?)
        case failure(any Error)
        case lead
    }

    private struct State {
        var waiting: [(id: SessionID, continuation: CheckedContinuation<Outcome, Never>)] = []
        var running = 0
    }

    private let state = Mutex(State())
    private let maxInFlight: Int
    private let maxBatch: Int

    init(maxInFlight: Int, maxBatch: Int = 64) {
        self.maxInFlight = max(1, maxInFlight)
        self.maxBatch = max(1, maxBatch)
    }

    func load(_ id: SessionID, _ fetch: Fetch) async throws -> Value? {
        let leads = state.withLock { state -> Bool in
            guard state.running < maxInFlight else { return false }
            state.running += 1
            return true
        }
        if leads { return try await lead(with: [id], fetch) }
        let outcome = await withCheckedContinuation { continuation in
            // A slot may have freed between the check and now: then lead at once.
            let leadNow = state.withLock { state -> Bool in
                if state.running < maxInFlight {
                    state.running += 1
                    return true
                }
                state.waiting.append((id, continuation))
                return false
            }
            if leadNow { continuation.resume(returning: .lead) }
        }
        switch outcome {
        case .value(let value): return value
        case .failure(let error): throw error
        case .lead: return try await lead(with: [id], fetch)
        }
    }

    /// Runs one batch for `own` plus everyone waiting, then passes the slot on.
    private func lead(with own: [SessionID], _ fetch: Fetch) async throws -> Value? {
        let others = state.withLock { state in
            let taken = Array(state.waiting.prefix(maxBatch - own.count))
            state.waiting.removeFirst(taken.count)
            return taken
        }
        let ids = own + others.map(\.id)
        let result: Result<[SessionID: Value], any Error>
        do {
            result = .success(try await fetch(Array(Set(ids))))
        } catch {
            result = .failure(error)
        }
        for (id, continuation) in others {
            switch result {
            case .success(let rows): continuation.resume(returning: .value(rows[id]))
            case .failure(let error): continuation.resume(returning: .failure(error))
            }
        }
        // Hand the slot to a waiter, or free it.
        let next = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            if state.waiting.isEmpty {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst().continuation
        }
        next?.resume(returning: .lead)
        return try result.get()[own[0]]
    }
}
