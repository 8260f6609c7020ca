import Logging
import ServiceLifecycle

/// A whole storage stack for a server: the durable tier, the in-process front over it, the bus
/// that keeps instances' fronts true, and the background services, in the order they must start.
///
/// ```swift
/// let changes = try ChangeEmitter()
/// let stack = SessionStack(
///     durable: try PostgresSessionStorage(configuration: postgres, changes: changes),
///     bus: try PostgresChangeBus(configuration: postgres, changes: changes))
/// let server = MCPServer(stack: stack)
/// let group = ServiceGroup(services: stack.services + [app, server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// ```
///
/// A `ServiceGroup` starts services in order and stops them in reverse, so the durable tier
/// starts first and stops last, and the cleanup service (which expires through the front, so
/// the other instances hear of each expired session) stops first.
public struct SessionStack: Sendable {
    /// What the server reads and writes: the tiered storage, or the durable one without a front.
    public let storage: any SessionStorage
    /// The durable tier.
    public let durable: any SessionStorage
    /// The bus, if any: the server subscribes to it too, to follow streams written elsewhere.
    public let bus: (any ChangeBus)?
    /// Everything to run, in start order: the durable tier and the bus when they are services,
    /// then the cleanup service.
    public let services: [any Service]

    /// - Parameters:
    ///   - durable: The storage every write reaches.
    ///   - front: The front's sizes and ages; `nil` for no front (every read goes to `durable`).
    ///   - bus: The bus shared with the other instances; `nil` for one instance.
    ///   - logger: For the tier and the cleanup service.
    public init(
        durable: any SessionStorage, front: TieredSessionStorage.Configuration? = TieredSessionStorage.Configuration(),
        bus: (any ChangeBus)? = nil, logger: Logger = Logger(label: "mcp.session")
    ) {
        let storage: any SessionStorage = front.map { TieredSessionStorage(durable: durable, front: $0, bus: bus, logger: logger) } ?? durable
        var services: [any Service] = []
        if let durable = durable as? any Service { services.append(durable) }
        if let bus = bus as? any Service { services.append(bus) }
        services.append(SessionCleanupService(storage: storage, logger: logger))
        self.storage = storage
        self.durable = durable
        self.bus = bus
        self.services = services
    }
}
