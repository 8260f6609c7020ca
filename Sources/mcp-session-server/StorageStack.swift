import Logging
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageSQLite
import ServiceLifecycle

/// The storage, front and bus that the flags describe, and the services they need running.
struct StorageStack {
    /// What the server reads and writes.
    let storage: any SessionStorage
    /// What tells the server about other instances' events, if anything.
    let bus: (any ChangeBus)?
    /// Everything to run, in start order (shutdown is the reverse).
    let services: [any Service]
    /// For the start-up log line.
    let description: String

    init(
        storage spec: StorageSpec, bus busSpec: BusSpec, busGap: Duration?, cache: Bool, maxEntries: Int?, maxBytes: Int?, sessionTTL: Duration, logger: Logger
    ) throws {
        var services: [any Service] = []
        let durable: any SessionStorage
        var attachable: PostgresSessionStorage?
        let limits = Self.limits
        switch spec {
        case .memory:
            durable = InMemorySessionStorage(configuration: .init(limits: limits))
        case .sqlite(let path):
            durable = try SQLiteSessionStorage(configuration: .init(path: path, limits: limits), logger: logger)
        case .postgres(let url):
            var configuration = try PostgresSessionStorage.Configuration(url: url)
            configuration.sessionTTL = sessionTTL
            configuration.limits = limits
            let postgres = try PostgresSessionStorage(configuration: configuration, logger: logger)
            services.append(postgres)
            durable = postgres
            attachable = postgres
        }

        var bus: (any ChangeBus)?
        var busName = "none"
        if let busURL = busSpec.resolved(for: spec) {
            let postgresBus: PostgresChangeBus
            // `auto` over PostgreSQL: the NOTIFY rides inside each write (atomic), or with a gap
            // inside writes that far apart. A bus URL given explicitly, even the storage's own,
            // gets the batched sender (faster writes).
            if let attachable, busSpec == .auto {
                let gap = busGap ?? .zero
                postgresBus = try PostgresChangeBus(attachedTo: attachable, minimumGap: gap, logger: logger)
                busName = gap == .zero ? "postgres (NOTIFY inside writes)" : "postgres (NOTIFY inside writes \(Int(gap / .milliseconds(1))) ms apart, batched between)"
            } else {
                let configuration = try PostgresSessionStorage.Configuration(url: busURL)
                postgresBus = try busGap.map { try PostgresChangeBus(configuration: configuration, minimumGap: $0, logger: logger) }
                    ?? PostgresChangeBus(configuration: configuration, logger: logger)
                busName = "postgres (batched NOTIFY)"
            }
            let fanout = ChangeBusFanout(postgresBus)
            services += [postgresBus, fanout]
            bus = fanout
        }

        var storage = durable
        if cache {
            var configuration = TieredSessionStorage.Configuration()
            if let maxEntries { configuration.maxEntries = maxEntries }
            if let maxBytes { configuration.maxBytes = maxBytes }
            let tiered = TieredSessionStorage(durable: durable, front: configuration, bus: bus, logger: logger)
            services.append(tiered)
            storage = tiered
        }
        services.append(
            SessionCleanupService(storage: storage, ttl: sessionTTL, interval: min(.seconds(60), sessionTTL / 2), logger: logger))
        self.storage = storage
        self.bus = bus
        self.services = services
        self.description = "\(spec.name), cache \(cache ? "lru" : "none"), bus \(busName)"
    }
}

extension StorageStack {
    /// The default limits, with events large enough for `state_get` to answer with any state
    /// value: the answer quotes the value's JSON as text, which escaping can double.
    static var limits: SessionLimits {
        var limits = SessionLimits()
        limits.maxEventBytes = max(limits.maxEventBytes, 2 * limits.maxStateValueBytes + (64 << 10))
        return limits
    }
}

extension StorageSpec {
    /// The storage's kind and place, without credentials.
    var name: String {
        switch self {
        case .memory: "memory"
        case .sqlite(let path): "sqlite \(path)"
        case .postgres(let url): "postgres \(url.split(separator: "@").last.map(String.init) ?? "")"
        }
    }
}
