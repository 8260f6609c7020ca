import Logging
import MCPSessionStorage
import MCPSessionStorageDynamoDB
import MCPSessionStoragePostgres
import MCPSessionStorageRedis
import MCPSessionStorageSQLite

/// The durable storage and bus the flags describe, assembled into a ``SessionStack``.
struct StorageStack {
    let stack: SessionStack
    /// For the start-up log line.
    let description: String
    /// Checks the storage's settings against the server before serving (Redis): `invalidInput`
    /// for a configuration the server refuses, `unavailable` while it cannot be reached.
    var checkConfiguration: (@Sendable () async throws(SessionStorageError) -> Void)?

    init(
        storage spec: StorageSpec, bus busSpec: BusSpec, busGap: Duration?, cache: Bool, maxEntries: Int?, maxBytes: Int?,
        consistency: TieredSessionStorage.Consistency, sessionTTL: Duration, logger: Logger
    ) throws {
        var policy = SessionPolicy()
        policy.sessionTTL = sessionTTL
        // Events large enough for state_get to answer with any state value: the answer quotes
        // the value's JSON as text, which escaping can double.
        policy.maxEventBytes = max(policy.maxEventBytes, 2 * policy.maxStateValueBytes + (64 << 10))

        var bus: (any ChangeBus)?
        var busName = "none"
        var durable: any SessionStorage
        var storageNote = ""
        switch spec {
        case .memory:
            durable = InMemorySessionStorage(configuration: .init(policy: policy))
        case .sqlite(let path):
            durable = try SQLiteSessionStorage(configuration: .init(path: path, policy: policy), logger: logger)
        case .postgres(let url):
            var configuration = try PostgresSessionStorage.Configuration(url: url)
            configuration.policy = policy
            // `auto` over PostgreSQL: the NOTIFY rides inside each write (atomic), or with a gap
            // inside writes that far apart. A bus URL given explicitly, even the storage's own,
            // gets the bus's own sender (faster writes, see the cluster guide).
            if busSpec == .auto {
                let gap = busGap ?? .zero
                let changes = try ChangeEmitter(minimumGap: gap, logger: logger)
                durable = try PostgresSessionStorage(configuration: configuration, changes: changes, logger: logger)
                bus = try PostgresChangeBus(configuration: configuration, changes: changes, logger: logger)
                busName = Self.attachedBusName("postgres", "NOTIFY", gap: gap)
            } else {
                durable = try PostgresSessionStorage(configuration: configuration, logger: logger)
            }
        case .redis(let url):
            var configuration = try RedisSessionStorage.Configuration(url: url)
            configuration.policy = policy
            // `auto` over Redis: each write's script PUBLISHes its change, or with a gap inside
            // writes that far apart.
            if busSpec == .auto {
                let gap = busGap ?? .zero
                let channel = RedisChangeBus.channel(forKeyPrefix: configuration.keyPrefix)
                let changes = try ChangeEmitter(channel: channel, minimumGap: gap, logger: logger)
                let redis = try RedisSessionStorage(configuration: configuration, changes: changes, logger: logger)
                durable = redis
                checkConfiguration = { () async throws(SessionStorageError) in try await redis.checkConfiguration() }
                bus = try RedisChangeBus(configuration: configuration, changes: changes, logger: logger)
                busName = Self.attachedBusName("redis", "PUBLISH", gap: gap)
            } else {
                let redis = try RedisSessionStorage(configuration: configuration, logger: logger)
                durable = redis
                checkConfiguration = { () async throws(SessionStorageError) in try await redis.checkConfiguration() }
            }
        case .dynamodb(let url):
            var configuration = try DynamoDBSessionStorage.Configuration(url: url)
            // Like the PostgreSQL migrations: a missing table is created unless the URL says create=false.
            if !url.contains("create=false") { configuration.createTable = true }
            // A value state_get can quote whole in one event, itself one DynamoDB item.
            policy.maxStateValueBytes = min(policy.maxStateValueBytes, (DynamoDBSessionStorage.itemValueLimit - 512 - (64 << 10)) / 2)
            configuration.policy = policy
            durable = try DynamoDBSessionStorage(configuration: configuration, logger: logger)
            storageNote = configuration.createTable ? " (creates the table if missing)" : " (the table must exist)"
        }
        if bus == nil, case .redis(let url) = busSpec {
            let configuration = try RedisSessionStorage.Configuration(url: url)
            bus = try RedisChangeBus(configuration: configuration, minimumGap: busGap ?? .milliseconds(10), logger: logger)
            busName = "redis (batched PUBLISH)"
        }
        if bus == nil, case .postgres(let url) = busSpec {
            let configuration = try PostgresSessionStorage.Configuration(url: url)
            bus = try PostgresChangeBus(configuration: configuration, minimumGap: busGap ?? .milliseconds(10), logger: logger)
            busName = "postgres (batched NOTIFY)"
        }

        var front: TieredSessionStorage.Configuration?
        if cache {
            var configuration = TieredSessionStorage.Configuration()
            if let maxEntries { configuration.maxEntries = maxEntries }
            if let maxBytes { configuration.maxBytes = maxBytes }
            configuration.consistency = consistency
            // DynamoDB has no bus of its own: without one, other instances' writes reach this
            // front only when its entries age out, so they age out fast.
            if bus == nil, case .dynamodb = spec {
                configuration.maxAge = Self.unbusedDynamoDBMaxAge
                storageNote +=
                    ", front maxAge \(Self.unbusedDynamoDBMaxAge.components.seconds) s (no bus: another instance's write is seen within it; --bus redis://… or postgres://… for more)"
            }
            front = configuration
        }
        stack = SessionStack(durable: durable, front: front, bus: bus, logger: logger)
        let consistencyName = bus == nil || !cache ? "" : consistency == .eventual ? ", eventual" : ", read-your-writes"
        description = "\(spec.name)\(storageNote), cache \(cache ? "lru" : "none"), bus \(busName)\(consistencyName)"
    }

    /// The start-up line's name of a bus whose messages ride inside the writes.
    static func attachedBusName(_ backend: String, _ command: String, gap: Duration) -> String {
        guard gap != .zero else { return "\(backend) (\(command) inside writes)" }
        // Clamped: Int(Double) of a gap past Int milliseconds (a flag's value) would trap.
        let milliseconds = gap / .milliseconds(1)
        let shown = milliseconds < Double(Int.max) ? Int(milliseconds) : Int.max
        return "\(backend) (\(command) inside writes \(shown) ms apart, batched between)"
    }

    /// The front's maximum entry age over DynamoDB without a bus.
    static let unbusedDynamoDBMaxAge: Duration = .seconds(1)
}
