import Logging
import Synchronization

/// Keeps a tier's front true to what the bus reports, on the bus's own thread as each signal
/// is read: drops what other instances' changes made stale, flushes when messages may have been
/// lost, and turns the front off while the bus is down.
///
/// Repair rules (after Hazelcast's near cache and Redis client-side caching): flush on
/// `connected` and `disconnected`, and on a gap in any origin's sequence numbers; the front's
/// maximum age bounds whatever goes undetected.
final class BusFollower: Sendable {
    private let instanceID: String
    private let front: SessionCache
    private let loads: SingleFlight
    private let metrics: TieredMetrics
    private let logger: Logger
    private let enabled = Atomic<Bool>(false)
    /// The last sequence number heard from each origin.
    private let lastSequence = Mutex<[String: UInt64]>([:])

    init(instanceID: String, front: SessionCache, loads: SingleFlight, metrics: TieredMetrics, logger: Logger) {
        self.instanceID = instanceID
        self.front = front
        self.loads = loads
        self.metrics = metrics
        self.logger = logger
    }

    /// Whether the bus is connected, so the front may serve reads.
    var isEnabled: Bool { enabled.load(ordering: .acquiring) }

    /// Applies one signal.
    func handle(_ signal: BusSignal) {
        switch signal {
        case .connected:
            flush("bus connected")
            lastSequence.withLock { $0 = [:] }
            enabled.store(true, ordering: .releasing)
        case .disconnected:
            enabled.store(false, ordering: .releasing)
            flush("bus disconnected")
        case .message(let message):
            guard message.origin != instanceID else { return }
            if case .sequenced(let number) = message.delivery {
                let last = lastSequence.withLock { sequences in
                    defer { sequences[message.origin] = number }
                    return sequences[message.origin]
                }
                if let last, number != last + 1 {
                    flush("gap in \(message.origin)'s messages: \(last) then \(number)")
                }
            }
            apply(message.change)
        }
    }

    /// Drops what another instance's change made stale.
    func apply(_ change: SessionChange) {
        metrics.invalidations.increment()
        switch change {
        case .changed(let id, let version):
            loads.invalidate(id)
            front.update(id) { $0.session.version >= version }
        case .mayHaveChanged(let id), .deleted(let id):
            loads.invalidate(id)
            front.remove(id)
        case .eventAppended(let id, _, let eventID):
            // A foreign event breaks the contiguous run this instance holds, unless it is already in it.
            front.update(id) { entry in
                if let last = entry.events.last?.id, eventID > last { entry.events = [] }
                return true
            }
        case .eventsDeleted(let id):
            front.update(id) { entry in
                entry.events = []
                return true
            }
        }
    }

    /// Drops everything, and marks the loads in flight.
    func flush(_ reason: String) {
        loads.invalidateAll()
        front.removeAll()
        metrics.flushes.increment()
        logger.debug("flushed the session front", metadata: ["reason": "\(reason)"])
    }
}
