import Logging
import MCPSessionStorage
import Synchronization

/// What a ``PostgresChangeBus`` has left to send, and when: the one place that decides whether a
/// change travels inside its write's own statement or in a later NOTIFY of the bus's sender.
///
/// - Attached with no gap: every write carries its change (sent if and only if it commits).
/// - Attached with a gap: a write carries its change when the bus has sent nothing for the gap,
///   along with the changes queued since; a write within the gap queues its change after it
///   commits, and the sender sends the queue when the gap is over unless a write took it first.
/// - Standalone: every change is queued, and the sender sends the queue at most once per gap.
///
/// A write's own change is numbered 0 (its delivery is its commit's); queued changes are
/// numbered when they leave the queue, with a write or the sender, so receivers see any that
/// are lost.
final class ChangeEmitter: Sendable {
    let channel: String
    let origin: String
    /// Whether writes may carry their changes (the durable tier is this database).
    let attached: Bool
    let minimumGap: Duration

    /// The largest NOTIFY payload sent (PostgreSQL's limit is 8 000 bytes).
    static let maxPayload = 7_000
    /// The most changes held while nothing can send them.
    static let maxQueued = 100_000
    /// Room left in a carried payload for the write's own lines.
    private static let ownLineRoom = 1_000

    private struct State {
        var queue: [SessionChange] = []
        var sequence: UInt64 = 0
        var lastSent: ContinuousClock.Instant
    }
    private let state: Mutex<State>
    private let wake: AsyncStream<Void>.Continuation
    /// Yields when the queue goes from empty to not: the sender's cue.
    let wakes: AsyncStream<Void>

    /// Queued changes a write took to carry, with the numbers they were given.
    struct Claim: Sendable, Equatable {
        /// The carried lines, each followed by a line break; empty if none.
        let lines: String
        fileprivate let changes: [SessionChange]
        fileprivate let numbers: ClosedRange<UInt64>?

        static let inline = Claim(lines: "", changes: [], numbers: nil)
    }

    /// What the sender should do next.
    enum Next: Equatable {
        case idle
        case wait(until: ContinuousClock.Instant)
        case send([String])
    }

    private let logger: Logger

    init(channel: String, origin: String, attached: Bool, minimumGap: Duration, logger: Logger) {
        self.logger = logger
        self.channel = channel
        self.origin = origin
        self.attached = attached
        self.minimumGap = minimumGap
        state = Mutex(State(lastSent: .now - minimumGap))
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether the sender runs at all: not for a bus whose every write carries its change.
    var needsSender: Bool { !attached || minimumGap > .zero }

    /// Asks to send a write's change inside the write. `nil`: write without it, then ``enqueue(_:)``
    /// the change once committed. `carrying`: the claim may take queued changes along (only for
    /// writes that send one payload); a write that then does not send must give them back with
    /// ``unclaim(_:)``. A write that cannot carry is refused while changes are queued.
    func claim(carrying: Bool) -> Claim? {
        guard attached else { return nil }
        guard minimumGap > .zero else { return .inline }
        let now = ContinuousClock.now
        return state.withLock { state -> Claim? in
            guard now >= state.lastSent + minimumGap else { return nil }
            // A statement that cannot carry the queue leaves this NOTIFY to one that can (or to
            // the sender): two in one gap would cost what the gap is there to save.
            guard carrying || state.queue.isEmpty else { return nil }
            state.lastSent = now
            guard !state.queue.isEmpty else { return .inline }
            // Merged first: the queue only shrinks, and what is not taken stays for the sender.
            let merged = SessionChange.merging(state.queue)
            let first = state.sequence + 1
            var lines = ""
            var taken = 0
            for change in merged {
                let line = ChangeMessageText.encode(ChangeMessage(origin: origin, sequence: state.sequence + 1, change: change))
                guard lines.utf8.count + line.utf8.count + 1 <= Self.maxPayload - Self.ownLineRoom else { break }
                lines += line + "\n"
                state.sequence += 1
                taken += 1
            }
            state.queue = Array(merged[taken...])
            guard taken > 0 else { return .inline }
            return Claim(lines: lines, changes: Array(merged[..<taken]), numbers: first...state.sequence)
        }
    }

    /// Gives back what a claim carried when its write sent nothing (it failed, or wrote no row).
    /// If nothing was numbered since, the changes go back to the queue under the same numbers;
    /// otherwise their numbers stay skipped and receivers flush.
    func unclaim(_ claim: Claim) {
        guard let numbers = claim.numbers else { return }
        let woke = state.withLock { state -> Bool in
            guard state.sequence == numbers.upperBound else { return false }
            state.sequence = numbers.lowerBound - 1
            let wasEmpty = state.queue.isEmpty
            state.queue.insert(contentsOf: claim.changes, at: 0)
            return wasEmpty
        }
        if woke { wake.yield() }
    }

    /// Queues committed changes for the sender.
    func enqueue(_ changes: some Collection<SessionChange>) {
        guard !changes.isEmpty else { return }
        let (wasEmpty, dropped) = state.withLock { state -> (Bool, Int) in
            let wasEmpty = state.queue.isEmpty
            // While the database is unreachable nothing drains the queue. Past the cap its
            // changes are dropped, and their numbers skipped so that receivers flush.
            guard state.queue.count + changes.count > Self.maxQueued else {
                state.queue.append(contentsOf: changes)
                return (wasEmpty, 0)
            }
            let dropped = state.queue.count
            state.sequence += UInt64(dropped)
            state.queue = Array(changes)
            return (wasEmpty, dropped)
        }
        if dropped > 0 {
            logger.warning("change bus queue full; dropped changes, receivers will flush", metadata: ["dropped": "\(dropped)"])
        }
        if wasEmpty { wake.yield() }
    }

    /// Runs a write that does not carry its NOTIFY, then queues the changes it made. A write
    /// that failed may have committed all the same, so `uncertain` is queued then: changes that
    /// make the other instances drop whatever they hold.
    func deferring<T, Failure: Error>(
        _ write: () async throws(Failure) -> T, changed: (T) -> [SessionChange], uncertain: @autoclosure () -> [SessionChange]
    ) async throws(Failure) -> T {
        let result: T
        do {
            result = try await write()
        } catch {
            enqueue(uncertain())
            throw error
        }
        enqueue(changed(result))
        return result
    }

    /// Ends the sender's wake-ups.
    func finish() { wake.finish() }

    /// The sender's next step: wait out the gap, send the queue, or nothing to do.
    func next() -> Next {
        let now = ContinuousClock.now
        return state.withLock { state -> Next in
            guard !state.queue.isEmpty else { return .idle }
            guard now >= state.lastSent + minimumGap else { return .wait(until: state.lastSent + minimumGap) }
            state.lastSent = now
            let changes = SessionChange.merging(state.queue)
            state.queue.removeAll(keepingCapacity: true)
            return .send(Self.payloads(for: changes, origin: origin, sequence: &state.sequence))
        }
    }

    /// Numbers `changes` from `sequence + 1` and packs them into payloads of at most ``maxPayload`` bytes.
    static func payloads(for changes: [SessionChange], origin: String, sequence: inout UInt64) -> [String] {
        var payloads: [String] = []
        var current = ""
        for change in changes {
            sequence += 1
            let line = ChangeMessageText.encode(ChangeMessage(origin: origin, sequence: sequence, change: change))
            if !current.isEmpty, current.utf8.count + 1 + line.utf8.count > maxPayload {
                payloads.append(current)
                current = ""
            }
            current += current.isEmpty ? line : "\n" + line
        }
        if !current.isEmpty { payloads.append(current) }
        return payloads
    }
}
