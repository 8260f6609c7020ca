import Foundation
import Logging
import Synchronization

/// What one instance sends on its change bus, and when: the one place that decides whether a
/// change travels inside its write (a NOTIFY in the write's statement, a PUBLISH in its script)
/// or later, sent by the bus.
///
/// Make one per instance and give it to both the durable storage and the bus; nothing is
/// attached afterwards:
///
/// ```swift
/// let changes = try ChangeEmitter()                                        // every write carries its change
/// let durable = try PostgresSessionStorage(configuration: postgres, changes: changes)
/// let bus = try PostgresChangeBus(configuration: postgres, changes: changes)
/// ```
///
/// - A storage built with an emitter asks it, for each write, whether the write carries its
///   change. With no ``minimumGap`` (the default) every write does, so the change is sent if and
///   only if the write commits. With a gap, a write carries its change only when nothing was
///   sent for the gap, together with the changes queued since; a write within the gap queues
///   its change once committed.
/// - Changes published after their writes (``ChangeBus/publish(_:)``, or queued as above) wait
///   in a queue that the bus sends at most once per ``minimumGap``, merged
///   (``SessionChange/merging(_:)``) and numbered, so receivers see any that are lost.
public final class ChangeEmitter: Sendable {
    /// This instance's id, stamped on every message.
    public let instanceID: String
    /// The channel (PostgreSQL NOTIFY channel, Redis pub/sub channel) messages travel on.
    public let channel: String
    /// The shortest time between two messages sent apart from their writes, and the quiet time
    /// after which a write carries its own.
    public let minimumGap: Duration

    /// The largest payload sent at once (PostgreSQL's NOTIFY limit is 8 000 bytes).
    @_spi(Backend) public static let maxPayload = 7_000
    /// The most changes held while nothing can send them.
    @_spi(Backend) public static let maxQueued = 100_000
    /// Room left in a carried payload for the write's own lines.
    private static let ownLineRoom = 1_000

    private struct State {
        var queue: [SessionChange] = []
        var sequence: UInt64 = 0
        var lastSent: ContinuousClock.Instant
    }
    private let state: Mutex<State>
    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    private let logger: Logger

    /// - Parameters:
    ///   - instanceID: This instance's id. Default: a new UUID.
    ///   - channel: The channel, 1–63 lowercase letters, digits or `_`, not starting with a
    ///     digit. Default `mcp_session_changes`.
    ///   - minimumGap: Zero (the default): every write of a storage built with this emitter
    ///     carries its change, sent if and only if it commits, and what is published after
    ///     writes goes at once. Above zero: at most one message per gap under load; a write made
    ///     after a quiet gap still carries its change at once. Changes queued within the gap are
    ///     lost if the process dies before it ends (other instances then hold their copies
    ///     until the front's `maxAge`). See the cluster guide for the trade.
    /// - Throws: `invalidInput` for a malformed instance id or channel, or a negative gap.
    public init(
        instanceID: String = UUID().uuidString, channel: String = "mcp_session_changes", minimumGap: Duration = .zero,
        logger: Logger = Logger(label: "mcp.session.changes")
    ) throws(SessionStorageError) {
        guard !instanceID.isEmpty, instanceID.utf8.count <= 128, instanceID.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "|") })
        else {
            throw SessionStorageError(.invalidInput, "instance id must be 1–128 visible ASCII characters other than '|'")
        }
        let validChannel =
            !channel.isEmpty && channel.utf8.count <= 63
            && channel.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            && !(channel.utf8.first.map { $0 >= 48 && $0 <= 57 } ?? false)
        guard validChannel else {
            throw SessionStorageError(
                .invalidInput, "channel must be 1–63 lowercase letters, digits or '_', not starting with a digit: \(channel.debugDescription)")
        }
        guard minimumGap >= .zero else { throw SessionStorageError(.invalidInput, "minimumGap must not be negative") }
        self.instanceID = instanceID
        self.channel = channel
        self.minimumGap = minimumGap
        self.logger = logger
        state = Mutex(State(lastSent: .now - minimumGap))
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: Writes that carry their change (the backend kit)

    /// Queued changes a write took to carry, with the numbers they were given.
    @_spi(Backend)
    public struct Claim: Sendable, Equatable {
        /// The carried lines, each followed by a line break; empty if none. The write's own
        /// message follows them in the same payload.
        public let lines: String
        fileprivate let changes: [SessionChange]
        fileprivate let numbers: ClosedRange<UInt64>?

        static let ownOnly = Claim(lines: "", changes: [], numbers: nil)
    }

    /// Asks whether a write carries its change.
    /// - Parameter carrying: Whether the write can take queued changes along (a write that sends
    ///   one payload). A write that cannot is refused while changes are queued: two messages in
    ///   one gap would cost what the gap is there to save.
    /// - Returns: A claim: run the write with its message, `claim.lines` first; a write that then
    ///   sends nothing (it failed, or wrote no row) gives the claim back with ``unclaim(_:)``.
    ///   `nil`: run the write without a message, then ``enqueue(_:)`` its change once committed
    ///   (``deferring(_:changed:uncertain:)`` does both).
    @_spi(Backend)
    public func claim(carrying: Bool) -> Claim? {
        guard minimumGap > .zero else { return .ownOnly }
        let now = ContinuousClock.now
        return state.withLock { state -> Claim? in
            guard now >= state.lastSent + minimumGap else { return nil }
            guard carrying || state.queue.isEmpty else { return nil }
            state.lastSent = now
            guard !state.queue.isEmpty else { return .ownOnly }
            // Merged first: the queue only shrinks, and what is not taken stays for the sender.
            let merged = SessionChange.merging(state.queue)
            let first = state.sequence + 1
            var lines = ""
            var taken = 0
            for change in merged {
                let line = ChangeMessageText.encode(ChangeMessage(origin: instanceID, delivery: .sequenced(state.sequence + 1), change: change))
                guard lines.utf8.count + line.utf8.count + 1 <= Self.maxPayload - Self.ownLineRoom else { break }
                lines += line + "\n"
                state.sequence += 1
                taken += 1
            }
            state.queue = Array(merged[taken...])
            guard taken > 0 else { return .ownOnly }
            return Claim(lines: lines, changes: Array(merged[..<taken]), numbers: first...state.sequence)
        }
    }

    /// Gives back what a claim carried when its write sent nothing. If nothing was numbered
    /// since, the changes go back to the queue under the same numbers; otherwise their numbers
    /// stay skipped and receivers flush.
    @_spi(Backend)
    public func unclaim(_ claim: Claim) {
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

    /// Queues changes for the bus to send.
    @_spi(Backend)
    public func enqueue(_ changes: some Collection<SessionChange>) {
        guard !changes.isEmpty else { return }
        let (wasEmpty, dropped) = state.withLock { state -> (Bool, Int) in
            let wasEmpty = state.queue.isEmpty
            // While the transport is down nothing drains the queue. Past the cap its changes
            // are dropped, and their numbers skipped so that receivers flush.
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
            logger.warning("change queue full; dropped changes, receivers will flush", metadata: ["dropped": "\(dropped)"])
        }
        if wasEmpty { wake.yield() }
    }

    /// Runs a write that does not carry its change, then queues the changes it made. A write
    /// that failed may have committed all the same, so `uncertain` is queued then: changes
    /// that make the other instances drop whatever they hold.
    @_spi(Backend)
    public func deferring<T, Failure: Error>(
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

    // MARK: The bus's sender (the backend kit)

    /// What the sender should do next.
    @_spi(Backend)
    public enum Next: Equatable, Sendable {
        /// Nothing queued: wait for ``wakes``.
        case idle
        /// Changes are queued; the gap ends then.
        case wait(until: ContinuousClock.Instant)
        /// Send these payloads, in order.
        case send([String])
    }

    /// Yields when the queue goes from empty to not empty: the sender's cue. Ends at ``finish()``.
    @_spi(Backend)
    public var wakes: AsyncStream<Void> { wakeups }

    /// Ends ``wakes``.
    @_spi(Backend)
    public func finish() { wake.finish() }

    /// The sender's next step: wait out the gap, send the queue, or nothing to do.
    @_spi(Backend)
    public func next() -> Next {
        let now = ContinuousClock.now
        return state.withLock { state -> Next in
            guard !state.queue.isEmpty else { return .idle }
            guard now >= state.lastSent + minimumGap else { return .wait(until: state.lastSent + minimumGap) }
            state.lastSent = now
            let changes = SessionChange.merging(state.queue)
            state.queue.removeAll(keepingCapacity: true)
            return .send(Self.payloads(for: changes, origin: instanceID, sequence: &state.sequence))
        }
    }

    /// Numbers `changes` from `sequence + 1` and packs them into payloads of at most ``maxPayload`` bytes.
    @_spi(Backend)
    public static func payloads(for changes: [SessionChange], origin: String, sequence: inout UInt64) -> [String] {
        var payloads: [String] = []
        var current = ""
        for change in changes {
            sequence += 1
            let line = ChangeMessageText.encode(ChangeMessage(origin: origin, delivery: .sequenced(sequence), change: change))
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
