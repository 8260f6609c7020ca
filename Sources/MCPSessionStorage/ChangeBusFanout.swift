import ServiceLifecycle
import Synchronization

/// Shares one ``ChangeBus`` among several listeners in one process.
///
/// A bus's ``ChangeBus/signals()`` may be called once, but an MCP server has two listeners:
/// the ``TieredSessionStorage`` (to drop stale entries) and the HTTP layer (to deliver an
/// event another instance appended to a stream this instance holds open). Wrap the bus, hand
/// the fanout to both, and run the fanout (and the bus) as services:
///
/// ```swift
/// let fanout = ChangeBusFanout(bus)
/// let storage = TieredSessionStorage(durable: durable, bus: fanout)
/// let server = MCPServer(storage: storage, bus: fanout)
/// let group = ServiceGroup(services: [durable, bus, fanout, storage, server], ...)
/// ```
///
/// Each ``signals()`` call returns a new, unbounded stream. A listener that subscribes after
/// the bus connected is first told the bus's current state (`connected` or `disconnected`).
public final class ChangeBusFanout: ChangeBus, Service {
    /// The bus being shared.
    public let bus: any ChangeBus

    private struct Listeners {
        var next = 0
        var all: [Int: AsyncStream<BusSignal>.Continuation] = [:]
        /// The last `connected` or `disconnected`, replayed to late listeners.
        var connection: BusSignal?
        var finished = false
    }
    private let listeners = Mutex(Listeners())

    public init(_ bus: any ChangeBus) {
        self.bus = bus
    }

    public var instanceID: String { bus.instanceID }
    public var changesEmittedByDurableWrites: Bool { bus.changesEmittedByDurableWrites }
    public func publish(_ change: SessionChange) async { await bus.publish(change) }

    /// A new stream of everything the bus hears from now on.
    public func signals() -> AsyncStream<BusSignal> {
        let (stream, continuation) = AsyncStream.makeStream(of: BusSignal.self)
        let key = listeners.withLock { listeners -> Int? in
            if listeners.finished { return nil }
            if let connection = listeners.connection { continuation.yield(connection) }
            let key = listeners.next
            listeners.next += 1
            listeners.all[key] = continuation
            return key
        }
        guard let key else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.listeners.withLock { $0.all.removeValue(forKey: key) }
        }
        return stream
    }

    /// Forwards the bus's signals to every listener until the bus ends, or graceful shutdown.
    public func run() async {
        // Not `cancelOnGracefulShutdown()`: its merge hands every message across tasks.
        await cancelWhenGracefulShutdown { [self] in
            for await signal in bus.signals() {
                listeners.withLock { listeners in
                    if case .message = signal {} else { listeners.connection = signal }
                    for continuation in listeners.all.values { continuation.yield(signal) }
                }
            }
        }
        let ended = listeners.withLock { listeners in
            listeners.finished = true
            defer { listeners.all = [:] }
            return Array(listeners.all.values)
        }
        for continuation in ended { continuation.finish() }
    }
}
