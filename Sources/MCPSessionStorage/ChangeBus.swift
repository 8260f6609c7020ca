/// Carries change messages between the instances of a cluster: a transport, which knows
/// nothing of storage.
///
/// A bus multicasts: every ``subscribe(_:)`` gets everything the bus hears from then on, so the
/// tiered storage (to drop stale entries) and the server (to wake the streams it holds open)
/// can both listen to one bus. Implementations: ``InProcessChangeBus`` (one process, for tests),
/// `PostgresChangeBus` (LISTEN/NOTIFY).
///
/// A change reaches the bus in one of two ways: ``publish(_:)`` after the write (the tiered
/// storage calls it), or inside the write itself, when the durable storage was built to send
/// its changes through the same ``ChangeEmitter`` (see ``ChangeAnnouncingStorage``). Either
/// way each message says how it travelled (``ChangeMessage/Delivery``), so receivers can repair
/// what a transport loses: flush on `disconnected`, on `connected`, and on a gap in an origin's
/// numbers.
public protocol ChangeBus: Sendable {
    /// This instance's id, stamped on what it sends.
    var instanceID: String { get }

    /// Sends a change this instance made, after its write. Never blocks and never fails: a lost
    /// message is repaired by the receivers (a gap in the numbers flushes) and bounded by the
    /// front's maximum age.
    func publish(_ change: SessionChange)

    /// Calls `handler` with everything the bus hears from now on, one signal at a time and in
    /// order, until the subscription is cancelled or released. A new subscriber first hears the
    /// bus's current state (`connected` or `disconnected`) once the bus has one.
    ///
    /// The handler runs on the bus's own thread, as soon as a message is read: it must return
    /// within microseconds (update a lock-protected table, resume a waiter; no I/O, no waiting).
    /// That is what lets an instance drop a stale entry before it can serve it again.
    func subscribe(_ handler: @escaping @Sendable (BusSignal) -> Void) -> BusSubscription
}

extension ChangeBus {
    /// Everything the bus hears from now on, as an async sequence (each element crosses to
    /// the consuming task: for tests and tools; storages subscribe with a handler).
    public func signals() -> AsyncStream<BusSignal> {
        let (stream, continuation) = AsyncStream.makeStream(of: BusSignal.self)
        let subscription = subscribe { continuation.yield($0) }
        continuation.onTermination = { _ in subscription.cancel() }
        return stream
    }
}

/// A storage whose writes send their own changes, inside the write (a NOTIFY in a PostgreSQL
/// statement, a PUBLISH in a Redis script), through the ``ChangeEmitter`` it was built with.
/// The tiered storage does not publish what such a storage already sends.
public protocol ChangeAnnouncingStorage: SessionStorage {
    /// The emitter its writes send through; `nil` when it was built without one.
    var changeEmitter: ChangeEmitter? { get }
}

/// A bus subscription; cancel it, or release it, to stop hearing.
public final class BusSubscription: Sendable {
    private let onCancel: @Sendable () -> Void

    /// A subscription that runs `onCancel` once, when cancelled or released.
    public init(onCancel: @escaping @Sendable () -> Void) {
        self.onCancel = onCancel
    }

    deinit { onCancel() }

    /// Stops the handler from being called (it may be running right now on the bus's thread).
    public func cancel() { onCancel() }
}
