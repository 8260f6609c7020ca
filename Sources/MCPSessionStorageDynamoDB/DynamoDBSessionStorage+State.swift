import Foundation
@_spi(Backend) import MCPSessionStorage

// State: one item per key. Setting or removing a key reads the session's version and byte count
// (and the key's size), then writes in one transaction conditioned on that version: the limit is
// checked against what is stored, the version rises by exactly one, and a writer that lost a race
// reads again and retries, so concurrent writers of different keys both land.

extension DynamoDBSessionStorage {
    /// What a state write needs to know: the session's version, creation time and state bytes,
    /// and the key's current size (0: not set).
    struct StateView: Sendable {
        var version: Int64
        var created: Int64
        var bytes: Int64
        var old: Int64?
    }

    /// Reads the session's version and bytes and the key's size in one `BatchGetItem`; `nil` when
    /// the session does not exist.
    func stateView(_ id: SessionID, key: String) async throws -> StateView? {
        let stateSK = DynamoDBLayout.stateSK(key)
        let items = try await batchGet(
            [sessionKey(id), DynamoDBLayout.key(id, stateSK)], projection: "sk, v, c, b, n")
        guard let session = items.first(where: { $0.string("sk") == DynamoDBLayout.sessionSK }), let version = session.int("v"),
            let created = session.int("c"), let bytes = session.int("b")
        else { return nil }
        return StateView(version: version, created: created, bytes: bytes, old: items.first { $0.string("sk") == stateSK }?.int("n"))
    }

    /// The session item's update for a state write: the version raised to `view.version + 1`,
    /// the bytes set to `bytes`, the activity to now, if the version and creation are still `view`'s.
    func versionedUpdate(_ id: SessionID, _ view: StateView, bytes: Int64, now: Date) -> [String: JSONValue] {
        [
            "Key": sessionKey(id), "UpdateExpression": "SET v = :next, b = :bytes, a = :now, #ttl = :ttl",
            "ConditionExpression": "v = :version AND c = :created", "ExpressionAttributeNames": ["#ttl": "ttl"],
            "ExpressionAttributeValues": [
                ":next": AttributeValue.n(view.version + 1), ":bytes": AttributeValue.n(bytes), ":now": AttributeValue.n(DynamoDBLayout.micros(now)),
                ":ttl": AttributeValue.n(expiry(after: now)), ":version": AttributeValue.n(view.version), ":created": AttributeValue.n(view.created),
            ],
        ]
    }

    /// Waits a little (jittered, growing) before re-reading after a lost race.
    func backOff(_ attempt: Int) async throws {
        try await Task.sleep(for: client.retry.delay(afterAttempt: min(attempt, 6)))
    }

    public func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? {
        try policy.checkKey(key)
        let text: String?? = try await perform("reading state of \(id)") { [self] in
            let answer = try await call(
                "GetItem", ["Key": DynamoDBLayout.key(id, DynamoDBLayout.stateSK(key)), "ConsistentRead": true, "ProjectionExpression": "j"])
            if let json = answer.item("Item")?.string("j") { return .some(json) }
            return try await exists(id) ? .some(nil) : nil
        }
        guard let text else { throw .sessionNotFound(id) }
        return try DynamoDBLayout.parse(text, "state value '\(key)' of \(id)")
    }

    @discardableResult
    public func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        let data = try policy.encodeStateValue(value, forKey: key)
        let entry = Int64(SessionPolicy.entryBytes(key: key, value: data))
        let item = stateItem(id, key: key, value: data)
        let limit = Int64(policy.maxStateBytesPerSession)
        return try await perform("setting state of \(id)") { [self] in
            var attempt = 0
            while true {
                guard let view = try await stateView(id, key: key) else { throw SessionStorageError.sessionNotFound(id) }
                let total = view.bytes - (view.old ?? 0) + entry
                guard total <= limit else {
                    throw SessionStorageError(.limitExceeded, "setting '\(key)' would take session \(id) past its state limit of \(limit) bytes")
                }
                do {
                    try await transact([["Update": versionedUpdate(id, view, bytes: total, now: Date())], ["Put": ["Item": .object(item)]]])
                    return view.version + 1
                } catch let error as DynamoDBServiceError where error.conditionFailed(at: 0) {
                    attempt += 1
                    try await backOff(attempt)
                }
            }
        }
    }

    @discardableResult
    public func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 {
        try policy.checkKey(key)
        return try await perform("removing state of \(id)") { [self] in
            var attempt = 0
            while true {
                guard let view = try await stateView(id, key: key) else { throw SessionStorageError.sessionNotFound(id) }
                let update = versionedUpdate(id, view, bytes: view.bytes - (view.old ?? 0), now: Date())
                do {
                    if view.old == nil {
                        _ = try await call("UpdateItem", update)
                    } else {
                        try await transact([["Update": update], ["Delete": ["Key": DynamoDBLayout.key(id, DynamoDBLayout.stateSK(key))]]])
                    }
                    return view.version + 1
                } catch let error as DynamoDBServiceError where error.isConditionFailure || error.conditionFailed(at: 0) {
                    attempt += 1
                    try await backOff(attempt)
                }
            }
        }
    }
}
