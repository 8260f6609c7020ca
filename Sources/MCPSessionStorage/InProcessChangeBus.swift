import Foundation
import Synchronization

/// A change bus inside one process: for tests, and for several tiered storages in one process.
///
/// Buses made with the same ``Hub`` hear each other's messages, numbered per origin, delivered
/// on the publisher's thread before ``publish(_:)`` returns. The hub can also misbehave on
/// purpose (lose messages, drop the connection) so tests can check the repair rules.
public final class InProcessChangeBus: ChangeBus {
    /// Connects the buses that share it.
    public final class Hub: Sendable {
        private struct State {
            var buses: [String: BusSubscribers] = [:]
            var dropNext = 0
        }

        private let state = Mutex(State())

        public init() {}

        func attach(_ id: String, _ subscribers: BusSubscribers) {
            state.withLock { $0.buses[id] = subscribers }
            subscribers.deliver(.connected)
        }

        func deliver(_ message: ChangeMessage) {
            let targets = state.withLock { state -> [BusSubscribers] in
                if state.dropNext > 0 {
                    state.dropNext -= 1
                    return []
                }
                return state.buses.filter { $0.key != message.origin }.map(\.value)
            }
            for target in targets { target.deliver(.message(message)) }
        }

        /// Loses the next `count` messages, as a network would.
        public func dropMessages(_ count: Int = 1) {
            state.withLock { $0.dropNext += count }
        }

        /// Tells every bus it was disconnected and then reconnected.
        public func bounce() {
            for target in state.withLock({ Array($0.buses.values) }) {
                target.deliver([.disconnected, .connected])
            }
        }
    }

    public let instanceID: String
    private let hub: Hub
    private let subscribers = BusSubscribers()
    private let sequence = Mutex<UInt64>(0)

    /// A bus on `hub`, connected at once.
    public init(hub: Hub, instanceID: String = UUID().uuidString) {
        self.hub = hub
        self.instanceID = instanceID
        hub.attach(instanceID, subscribers)
    }

    public func publish(_ change: SessionChange) {
        // Numbering and delivery under one lock keep each origin's messages in order.
        sequence.withLock { sequence in
            sequence += 1
            hub.deliver(ChangeMessage(origin: instanceID, delivery: .sequenced(sequence), change: change))
        }
    }

    public func subscribe(_ handler: @escaping @Sendable (BusSignal) -> Void) -> BusSubscription {
        subscribers.subscribe(handler)
    }
}
