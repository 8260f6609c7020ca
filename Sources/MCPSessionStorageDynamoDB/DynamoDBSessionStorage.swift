import Foundation
import Logging
@_spi(Backend) import MCPSessionStorage
import ServiceLifecycle
import Synchronization

/// Sessions in Amazon DynamoDB: the serverless durable tier, for servers on Lambda or ECS that
/// keep nothing on their own disks.
///
/// ```swift
/// var configuration = try DynamoDBSessionStorage.Configuration(url: "dynamodb://mcp-sessions?region=eu-west-1")
/// configuration.createTable = true
/// let storage = try DynamoDBSessionStorage(configuration: configuration)
/// ```
///
/// One table holds everything, a session's items under its id (the layout is in
/// `Docs/DynamoDB.md`): the session item, one item per state key, one per event, one per lease.
/// So a session's state is not bounded by DynamoDB's 400 KB item size, only each value is.
///
/// - Setting a key is one transaction, conditioned on the version read just before: it writes
///   the value, raises the version and the state's byte count, checks the limit. Writers of
///   different keys never lose each other's (a conflict re-reads and retries).
/// - Event ids come from an atomic counter on the session item (`UpdateItem SET e = e + 1`), so two
///   instances never take the same one; the event is then written with a condition that it is
///   not already trimmed.
/// - Every read that can span pages follows `LastEvaluatedKey`.
/// - Expiry reads a global index on activity, never a `Scan`; items carry a `ttl` attribute so
///   DynamoDB's own expiry backs up the cleanup service.
///
/// Requests are signed with SigV4 and sent over AsyncHTTPClient; throttling and server errors
/// are retried with backoff and jitter within ``Configuration/operationTimeout``, and an
/// unreachable endpoint fails calls with `unavailable`. Pair it with a Redis or PostgreSQL
/// ``ChangeBus`` for a front on several instances.
public final class DynamoDBSessionStorage: SessionStorage, Service {
    /// The configuration the storage was made with.
    public let configuration: Configuration
    let client: DynamoDBClient
    private let watchdog = DeadlineWatchdog()
    private let logger: Logger
    private let declaredPolicy: SessionPolicy
    private let tableReady = Mutex<Task<Void, any Error>?>(nil)
    private let ready = Atomic<Bool>(false)

    /// The largest state value or event payload a DynamoDB item holds, with room for its key
    /// and other attributes under the 400 KB item limit, read as 400 000 bytes (AWS accepts a
    /// little more, 400 KiB; DynamoDB-compatible servers such as moto stop at 405 000).
    public static let itemValueLimit = 399_000

    /// Makes the storage. Nothing is sent until the first call.
    /// - Parameters:
    ///   - configuration: The table, region, endpoint and behaviour.
    ///   - logger: For table creation and retries.
    /// - Throws: `invalidInput` for a malformed configuration.
    public init(configuration: Configuration, logger: Logger = Logger(label: "mcp.session.dynamodb")) throws(SessionStorageError) {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        let provider = CredentialsProvider(source: configuration.credentials, http: DynamoDBClient.sharedHTTPClient)
        self.client = try DynamoDBClient(
            endpoint: configuration.resolvedEndpoint, region: configuration.region, credentials: provider, retry: configuration.retry)
        var policy = configuration.policy
        policy.maxStateValueBytes = min(policy.maxStateValueBytes, Self.itemValueLimit)
        policy.maxEventBytes = min(policy.maxEventBytes, Self.itemValueLimit - StreamID.maxLength - 256)
        self.declaredPolicy = policy
    }

    /// The configured policy, with each value and event payload limited to what one DynamoDB
    /// item holds (``itemValueLimit``).
    public var policy: SessionPolicy { declaredPolicy }

    /// Creates the table when ``Configuration/createTable`` allows (or checks that it is there),
    /// then waits for graceful shutdown.
    public func run() async {
        do { try await prepare() } catch { logger.warning("DynamoDB table \(configuration.table) not ready yet: \(error)") }
        try? await gracefulShutdown()
    }

    /// Creates the table if allowed and missing, waiting until it is ACTIVE; otherwise checks
    /// that it exists. Calls do this on first use; call it to fail early.
    /// - Throws: `unavailable` when the table is missing (and may not be created) or cannot be reached.
    public func prepare() async throws(SessionStorageError) {
        try await perform("preparing table \(configuration.table)", timeout: configuration.tableCreationTimeout) { [self] in try await ensureTable() }
    }

    // MARK: Calls

    /// Runs `body` within the operation timeout, after the table is ready, mapping every error.
    func perform<T: Sendable>(_ what: @autoclosure () -> String, timeout: Duration? = nil, _ body: @escaping @Sendable () async throws -> T)
        async throws(SessionStorageError) -> T
    {
        do {
            return try await watchdog.run(timeout: timeout ?? configuration.operationTimeout) { [self] in
                if !ready.load(ordering: .acquiring) { try await ensureTable() }
                return try await body()
            }
        } catch {
            if let error = error as? DynamoDBServiceError, error.type == "ResourceNotFoundException" {
                // The table went (deleted, or a local server restarted empty): check, or create,
                // it again on the next call.
                ready.store(false, ordering: .releasing)
                tableReady.withLock { $0 = nil }
            }
            throw DynamoDBErrors.map(error, what(), endpoint: configuration.resolvedEndpoint, table: configuration.table)
        }
    }

    /// Creates (or checks) the table once; concurrent first calls share the work, and a failure
    /// lets the next call try again.
    private func ensureTable() async throws {
        let task = tableReady.withLock { task -> Task<Void, any Error> in
            if let task { return task }
            let created = Task { [configuration, client] in
                if configuration.createTable {
                    try await DynamoDBTable.create(configuration.table, client: client)
                } else {
                    _ = try await client.call("DescribeTable", ["TableName": .string(configuration.table)])
                }
            }
            task = created
            return created
        }
        do {
            try await task.value
            ready.store(true, ordering: .releasing)
        } catch {
            tableReady.withLock { if $0 == task { $0 = nil } }
            throw error
        }
    }

    /// Calls `operation` on the table: `TableName` is added to `body`.
    func call(_ operation: String, _ body: [String: JSONValue]) async throws -> [String: JSONValue] {
        var body = body
        body["TableName"] = .string(configuration.table)
        return try await client.call(operation, body)
    }

    /// Runs a transaction of `items` (each `["Put": …]`, `["Update": …]`, …), adding the table name.
    func transact(_ items: [[String: [String: JSONValue]]]) async throws {
        let table = JSONValue.string(configuration.table)
        let list: [JSONValue] = items.map { entry in
            .object(
                entry.mapValues { operation in
                    var operation = operation
                    operation["TableName"] = table
                    return .object(operation)
                })
        }
        _ = try await client.call("TransactWriteItems", ["TransactItems": .array(list)])
    }

    /// Every item a `Query` finds, following `LastEvaluatedKey` page by page, until `limit`.
    func query(_ request: [String: JSONValue], limit: Int? = nil) async throws -> [DynamoItem] {
        var items: [DynamoItem] = []
        var request = request
        while true {
            if let limit { request["Limit"] = .int(Int64(max(1, limit - items.count))) }
            let page = try await call("Query", request)
            items += page.items()
            if let limit, items.count >= limit { return Array(items.prefix(limit)) }
            guard case .object(let next)? = page["LastEvaluatedKey"], !next.isEmpty else { return items }
            request["ExclusiveStartKey"] = .object(next)
        }
    }

    /// How many items a `Query` finds (`Select: COUNT`), over every page.
    func count(_ request: [String: JSONValue]) async throws -> Int {
        var total = 0
        var request = request
        request["Select"] = "COUNT"
        while true {
            let page = try await call("Query", request)
            total += Int(page["Count"]?.intValue ?? 0)
            guard case .object(let next)? = page["LastEvaluatedKey"], !next.isEmpty else { return total }
            request["ExclusiveStartKey"] = .object(next)
        }
    }

    /// Reads items by key, strongly consistent, retrying what DynamoDB left unprocessed.
    func batchGet(_ keys: [JSONValue], projection: String? = nil, names: [String: JSONValue]? = nil) async throws -> [DynamoItem] {
        var found: [DynamoItem] = []
        var start = 0
        while start < keys.count {
            var pending = Array(keys[start..<min(keys.count, start + 100)])
            start += 100
            var attempt = 0
            while !pending.isEmpty {
                var request: [String: JSONValue] = ["Keys": .array(pending), "ConsistentRead": true]
                if let projection { request["ProjectionExpression"] = .string(projection) }
                if let names { request["ExpressionAttributeNames"] = .object(names) }
                let answer = try await client.call("BatchGetItem", ["RequestItems": [configuration.table: .object(request)]])
                if case .array(let items)? = answer["Responses"]?[member: configuration.table] {
                    found += items.compactMap { if case .object(let item) = $0 { item } else { nil } }
                }
                if case .array(let left)? = answer["UnprocessedKeys"]?[member: configuration.table]?[member: "Keys"] {
                    pending = left
                    attempt += 1
                    try await Task.sleep(for: client.retry.delay(afterAttempt: attempt))
                } else {
                    pending = []
                }
            }
        }
        return found
    }

    /// Deletes items by key, 25 a request, retrying what DynamoDB left unprocessed.
    func batchDelete(_ keys: [JSONValue]) async throws {
        var start = 0
        while start < keys.count {
            var pending: [JSONValue] = keys[start..<min(keys.count, start + 25)].map { ["DeleteRequest": ["Key": $0]] }
            start += 25
            var attempt = 0
            while !pending.isEmpty {
                let answer = try await client.call("BatchWriteItem", ["RequestItems": [configuration.table: .array(pending)]])
                if case .array(let left)? = answer["UnprocessedItems"]?[member: configuration.table], !left.isEmpty {
                    pending = left
                    attempt += 1
                    try await Task.sleep(for: client.retry.delay(afterAttempt: attempt))
                } else {
                    pending = []
                }
            }
        }
    }

    /// When DynamoDB may drop a session item on its own: twice the TTL after its activity.
    func expiry(after activity: Date) -> Int64 {
        Int64(activity.timeIntervalSince1970 + 2 * policy.sessionTTL.timeInterval)
    }

    /// The session item's key.
    func sessionKey(_ id: SessionID) -> JSONValue { DynamoDBLayout.key(id, DynamoDBLayout.sessionSK) }

    /// Whether the session item exists (strongly consistent).
    func exists(_ id: SessionID) async throws -> Bool {
        let answer = try await call("GetItem", ["Key": sessionKey(id), "ConsistentRead": true, "ProjectionExpression": "pk"])
        return answer.item("Item") != nil
    }

    /// Every key of a session's items, or those whose sort key starts with `prefix`.
    func itemKeys(_ id: SessionID, prefix: String? = nil) async throws -> [JSONValue] {
        var values: [String: JSONValue] = [":id": AttributeValue.s(id.rawValue)]
        var condition = "pk = :id"
        if let prefix {
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = AttributeValue.s(prefix)
        }
        let request: [String: JSONValue] = [
            "ConsistentRead": true, "ProjectionExpression": "pk, sk", "KeyConditionExpression": .string(condition),
            "ExpressionAttributeValues": .object(values),
        ]
        return try await query(request).compactMap { item in
            guard let pk = item["pk"], let sk = item["sk"] else { return nil }
            return .object(["pk": pk, "sk": sk])
        }
    }

    /// Deletes every item of a session but the session item (gone already, or kept).
    func deleteItems(of id: SessionID) async throws {
        let keys = try await itemKeys(id).filter { $0[member: "sk"]?[member: "S"]?.stringValue != DynamoDBLayout.sessionSK }
        try await batchDelete(keys)
    }
}
