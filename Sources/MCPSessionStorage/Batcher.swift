import Synchronization

/// Lets concurrent calls on different sessions share one statement and one round trip (or,
/// for SQLite, one transaction). Shared by the backends in this package.
///
/// A caller that finds a free slot (fewer than `maxInFlight` batches running) leads: it takes
/// the calls waiting, itself included, runs one statement for all of them, and hands each
/// waiter its result. Callers arriving while every slot is busy wait; when a batch ends, its
/// leader hands the lead to one of them, who takes everyone waiting by then. A lone caller
/// never waits and runs a batch of one, so batching costs nothing when there is nothing to batch.
///
/// Reads (`distinctSessions: false`) may carry one session several times, and share its row.
/// Writes (`distinctSessions: true`) take a session at most once per batch, so one statement
/// never changes a row twice; a second write of a session waits for the next batch.
@_spi(Backend)
public final class Batcher<Input: Sendable, Output: Sendable>: Sendable {
    /// Runs one batch: each call's session and input, to each session's output. A session
    /// missing from the answer gets `nil` (a read found no row; a write was not applied).
    public typealias Run = @Sendable ([(id: SessionID, input: Input)]) async throws -> [SessionID: Output]

    private enum Outcome {
        case value(Output?)
        case failure(any Error)
        case lead
    }

    private struct Call {
        var id: SessionID
        var input: Input
        var continuation: CheckedContinuation<Outcome, Never>
    }

    private struct State {
        var waiting: [Call] = []
        var running = 0
    }

    private let state = Mutex(State())
    private let maxInFlight: Int
    private let maxBatch: Int
    private let distinctSessions: Bool

    public init(maxInFlight: Int, maxBatch: Int = 64, distinctSessions: Bool) {
        self.maxInFlight = max(1, maxInFlight)
        self.maxBatch = max(1, maxBatch)
        self.distinctSessions = distinctSessions
    }

    public func run(_ id: SessionID, _ input: Input, _ batch: Run) async throws -> Output? {
        let leads = state.withLock { state -> Bool in
            guard state.running < maxInFlight else { return false }
            state.running += 1
            return true
        }
        if leads { return try await lead(id, input, batch) }
        let outcome = await withCheckedContinuation { continuation in
            // A slot may have freed between the check and now: then lead at once.
            let leadNow = state.withLock { state -> Bool in
                if state.running < maxInFlight {
                    state.running += 1
                    return true
                }
                state.waiting.append(Call(id: id, input: input, continuation: continuation))
                return false
            }
            if leadNow { continuation.resume(returning: .lead) }
        }
        switch outcome {
        case .value(let value): return value
        case .failure(let error): throw error
        case .lead: return try await lead(id, input, batch)
        }
    }

    /// Runs one batch for the leader's call plus the calls waiting, then passes the slot on.
    private func lead(_ id: SessionID, _ input: Input, _ batch: Run) async throws -> Output? {
        let others = state.withLock { state in take(from: &state.waiting, besides: id) }
        let result: Result<[SessionID: Output], any Error>
        do {
            result = .success(try await batch([(id, input)] + others.map { ($0.id, $0.input) }))
        } catch {
            result = .failure(error)
        }
        for call in others {
            switch result {
            case .success(let outputs): call.continuation.resume(returning: .value(outputs[call.id]))
            case .failure(let error): call.continuation.resume(returning: .failure(error))
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
        return try result.get()[id]
    }

    /// Up to `maxBatch - 1` waiting calls to join the leader's (on `id`), oldest first; with
    /// `distinctSessions`, none on a session already in the batch.
    private func take(from waiting: inout [Call], besides id: SessionID) -> [Call] {
        guard distinctSessions else {
            let taken = Array(waiting.prefix(maxBatch - 1))
            waiting.removeFirst(taken.count)
            return taken
        }
        var sessions: Set<SessionID> = [id]
        var taken: [Call] = []
        var left: [Call] = []
        for call in waiting {
            if taken.count < maxBatch - 1, sessions.insert(call.id).inserted {
                taken.append(call)
            } else {
                left.append(call)
            }
        }
        waiting = left
        return taken
    }
}
