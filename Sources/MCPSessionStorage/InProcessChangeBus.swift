import Foundation
import Synchronization

/// A change bus inside one process: for tests, and for several tiered storages in one process.
///
/// Instances made with the same ``Hub`` hear each other. The hub can also misbehave on purpose
/// (drop a message, drop the connection) so tests can check the repair rules.
public final class InProcessChangeBus: ChangeBus {
    /// Connects the buses that share it.
    public final class Hub: Sendable {
        private struct State {
            var subscribers: [String: AsyncStream<BusSignal>.Continuation] = [:]
            var dropNext = 0
        }

        private let state = Mutex(State())

        public init() {}

        func attach(_ id: String, _ continuation: AsyncStream<BusSignal>.Continuation) {
            state.withLock { $0.subscribers[id] = continuation }
            continuation.yield(.connected)
        }

        func deliver(_ message: ChangeMessage) {
            let targets = state.withLock { state -> [AsyncStream<BusSignal>.Continuation] in
                if state.dropNext > 0 {
                    state.dropNext -= 1
                    return []
                }
                return state.subscribers.filter { $0.key != message.origin }.map(\.value)
            }
            for target in targets { target.yield(.message(message)) }
        }

        /// Loses the next `count` messages, as a network would.
        public func dropMessages(_ count: Int = 1) {
            state.withLock { $0.dropNext += count }
        }

        /// Tells every bus it was disconnected and then reconnected.
        public func bounce() {
            let targets = state.withLock { Array($0.subscribers.values) }
            for target in targets {
                target.yield(.disconnected)
                target.yield(.connected)
            }
        }
    }

    public let instanceID: String
    private let hub: Hub
    private let sequence = Mutex<UInt64>(0)

    public init(hub: Hub, instanceID: String = UUID().uuidString) {
        self.hub = hub
        self.instanceID = instanceID
    }

    public func publish(_ change: SessionChange) async {
        // Numbering and delivery under one lock keep each origin's messages in order.
        sequence.withLock { sequence in
            sequence += 1
            hub.deliver(ChangeMessage(origin: instanceID, sequence: sequence, change: change))
        }
    }

    public func signals() -> AsyncStream<BusSignal> {
        let (stream, continuation) = AsyncStream.makeStream(of: BusSignal.self)
        hub.attach(instanceID, continuation)
        return stream
    }
}
