import Synchronization

/// The subscribers of one bus: what a ``ChangeBus`` implementation keeps to multicast what it
/// hears. Part of the backend kit (`@_spi(Backend) import MCPSessionStorage`).
///
/// The transport calls ``deliver(_:)`` from its reading thread; every handler runs there, in
/// order. ``subscribe(_:)`` replays the last connection state to a late subscriber, so a front
/// that subscribes after the bus connected still turns on.
@_spi(Backend)
public final class BusSubscribers: Sendable {
    private struct State {
        var next = 0
        var handlers: [Int: @Sendable (BusSignal) -> Void] = [:]
        /// The last `connected` or `disconnected`.
        var connection: BusSignal?
    }
    private let state = Mutex(State())
    /// Delivery runs one signal at a time, in order, even when a subscriber joins meanwhile.
    private let delivering = Mutex(())

    public init() {}

    /// Adds a handler; see ``ChangeBus/subscribe(_:)``.
    public func subscribe(_ handler: @escaping @Sendable (BusSignal) -> Void) -> BusSubscription {
        let key = delivering.withLock { _ in
            let (key, connection) = state.withLock { state in
                let key = state.next
                state.next += 1
                state.handlers[key] = handler
                return (key, state.connection)
            }
            if let connection { handler(connection) }
            return key
        }
        return BusSubscription { [weak self] in
            _ = self?.state.withLock { $0.handlers.removeValue(forKey: key) }
        }
    }

    /// Hands `signal` to every subscriber, on the caller's thread.
    public func deliver(_ signal: BusSignal) {
        delivering.withLock { _ in
            let handlers = state.withLock { state in
                if case .message = signal {} else { state.connection = signal }
                return Array(state.handlers.values)
            }
            for handler in handlers { handler(signal) }
        }
    }

    /// Hands several signals to every subscriber, in order, under one pass.
    public func deliver(_ signals: [BusSignal]) {
        guard !signals.isEmpty else { return }
        delivering.withLock { _ in
            let handlers = state.withLock { state in
                for signal in signals { if case .message = signal {} else { state.connection = signal } }
                return Array(state.handlers.values)
            }
            for signal in signals { for handler in handlers { handler(signal) } }
        }
    }
}
