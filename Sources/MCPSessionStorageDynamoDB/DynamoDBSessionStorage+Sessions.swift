import Foundation
@_spi(Backend) import MCPSessionStorage

// Sessions: the session item (`sk = s`) with its state items, written together in transactions.

extension DynamoDBSessionStorage {
    /// DynamoDB takes at most 100 items in a transaction: a create or update writes the session
    /// item and one item per state key (and deletes the keys an update drops).
    static let transactionItems = 100
    /// And at most 4 MB in one transaction, of which this much for state.
    static let transactionStateBytes = 4_000_000 - 64 * 1024

    /// Checks that a create or update of `state` (dropping `dropped` keys) fits in one transaction.
    func checkTransaction(_ state: EncodedState, dropped: Int = 0) throws(SessionStorageError) {
        guard 1 + state.values.count + dropped <= Self.transactionItems else {
            throw SessionStorageError(
                .limitExceeded,
                "a session created or updated on DynamoDB holds at most \(Self.transactionItems - 1) state keys at once "
                    + "(one transaction); set more with setState")
        }
        guard state.total <= Self.transactionStateBytes else {
            throw SessionStorageError(
                .limitExceeded,
                "a session created or updated on DynamoDB holds at most \(Self.transactionStateBytes) bytes of state at once "
                    + "(one 4 MB transaction); set more with setState")
        }
    }

    /// The state item of `key`.
    func stateItem(_ id: SessionID, key: String, value: Data) -> DynamoItem {
        [
            "pk": AttributeValue.s(id.rawValue), "sk": AttributeValue.s(DynamoDBLayout.stateSK(key)),
            "j": AttributeValue.s(String(decoding: value, as: UTF8.self)),
            "n": AttributeValue.n(SessionPolicy.entryBytes(key: key, value: value)),
        ]
    }

    public func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo {
        let session = SessionInfo(id: id ?? .generate(), fields: fields, at: Date())
        let state = try policy.encodeState(fields.state)
        try checkTransaction(state)
        var item: DynamoItem = [
            "pk": AttributeValue.s(session.id.rawValue), "sk": AttributeValue.s(DynamoDBLayout.sessionSK),
            "c": AttributeValue.n(DynamoDBLayout.micros(session.createdAt)), "a": AttributeValue.n(DynamoDBLayout.micros(session.lastActivity)),
            "i": AttributeValue.bool(session.isInitialized), "m": AttributeValue.s(try DynamoDBLayout.json(.object(session.metadata)) ?? "{}"),
            "v": AttributeValue.n(1), "b": AttributeValue.n(state.total), "e": AttributeValue.n(0), "f": AttributeValue.n(1),
            "ab": AttributeValue.s(String(DynamoDBLayout.bucket(of: session.id, buckets: configuration.indexBuckets))),
            "ttl": AttributeValue.n(expiry(after: session.lastActivity)),
        ]
        if let protocolVersion = session.protocolVersion { item["p"] = AttributeValue.s(protocolVersion) }
        if let text = try DynamoDBLayout.json(session.clientInfo) { item["ci"] = AttributeValue.s(text) }
        if let text = try DynamoDBLayout.json(session.clientCapabilities) { item["cc"] = AttributeValue.s(text) }
        if let text = try DynamoDBLayout.json(session.serverCapabilities) { item["sc"] = AttributeValue.s(text) }
        let states = state.values.map { stateItem(session.id, key: $0.key, value: $0.value) }
        let explicit = id != nil
        let created = try await perform("creating session \(session.id)") { [self, item] in
            // A given id may have left items behind (a session DynamoDB's TTL removed before
            // the cleanup service did): clear them, so the new session starts empty.
            if explicit {
                let left = try await itemKeys(session.id)
                if left.contains(where: { $0[member: "sk"]?[member: "S"]?.stringValue == DynamoDBLayout.sessionSK }) { return false }
                try await batchDelete(left)
            }
            do {
                let put: [String: JSONValue] = ["Item": .object(item), "ConditionExpression": "attribute_not_exists(pk)"]
                if states.isEmpty {
                    _ = try await call("PutItem", put)
                } else {
                    try await transact([["Put": put]] + states.map { ["Put": ["Item": .object($0)]] })
                }
                return true
            } catch let error as DynamoDBServiceError where error.isConditionFailure || error.conditionFailed(at: 0) {
                return false
            }
        }
        guard created else { throw SessionStorageError(.versionConflict, "session \(session.id) already exists") }
        return session
    }

    public func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        let items = try await perform("reading session \(id)") { [self] in
            // The session item (`s`) and its state items (`t#…`) sort after events and leases.
            try await query([
                "KeyConditionExpression": "pk = :id AND sk >= :s", "ConsistentRead": true,
                "ExpressionAttributeValues": [":id": AttributeValue.s(id.rawValue), ":s": AttributeValue.s(DynamoDBLayout.sessionSK)],
            ])
        }
        guard let item = items.first(where: { $0.string("sk") == DynamoDBLayout.sessionSK }) else { return nil }
        return try DynamoDBLayout.session(id, item: item, state: items.filter { $0.string("sk") != DynamoDBLayout.sessionSK })
    }

    public func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? {
        let answer = try await perform("reading the version of \(id)") { [self] in
            try await call("GetItem", ["Key": sessionKey(id), "ConsistentRead": true, "ProjectionExpression": "v"])
        }
        return answer.item("Item")?.int("v")
    }

    public func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo {
        let state = try policy.encodeState(session.state)
        try checkTransaction(state)
        let now = Date()
        var sets = ["i = :i", "m = :m", "b = :b", "a = :a", "#ttl = :ttl", "v = :next"]
        var removes: [String] = []
        var values: [String: JSONValue] = [
            ":i": AttributeValue.bool(session.isInitialized), ":m": AttributeValue.s(try DynamoDBLayout.json(.object(session.metadata)) ?? "{}"),
            ":b": AttributeValue.n(state.total), ":a": AttributeValue.n(DynamoDBLayout.micros(now)), ":ttl": AttributeValue.n(expiry(after: now)),
            ":next": AttributeValue.n(session.version + 1), ":expected": AttributeValue.n(session.version),
        ]
        let optional: [(String, String?)] = [
            ("p", session.protocolVersion), ("ci", try DynamoDBLayout.json(session.clientInfo)),
            ("cc", try DynamoDBLayout.json(session.clientCapabilities)), ("sc", try DynamoDBLayout.json(session.serverCapabilities)),
        ]
        for (name, value) in optional {
            if let value {
                sets.append("\(name) = :\(name)")
                values[":\(name)"] = AttributeValue.s(value)
            } else {
                removes.append(name)
            }
        }
        let expression = "SET " + sets.joined(separator: ", ") + (removes.isEmpty ? "" : " REMOVE " + removes.joined(separator: ", "))
        let update: [String: JSONValue] = [
            "Key": sessionKey(session.id), "UpdateExpression": .string(expression), "ConditionExpression": "v = :expected",
            "ExpressionAttributeNames": ["#ttl": "ttl"], "ExpressionAttributeValues": .object(values),
        ]
        let puts = state.values.map { stateItem(session.id, key: $0.key, value: $0.value) }
        let created: Int64? = try await perform("updating session \(session.id)") { [self] in
            let current = try await query([
                "KeyConditionExpression": "pk = :id AND sk >= :s", "ConsistentRead": true, "ProjectionExpression": "sk, c, v",
                "ExpressionAttributeValues": [":id": AttributeValue.s(session.id.rawValue), ":s": AttributeValue.s(DynamoDBLayout.sessionSK)],
            ])
            guard let item = current.first(where: { $0.string("sk") == DynamoDBLayout.sessionSK }) else { return nil }
            guard item.int("v") == session.version else { throw SessionStorageError(.versionConflict, "session \(session.id) changed") }
            let dropped = current.compactMap { $0.string("sk") }.filter {
                $0.hasPrefix(DynamoDBLayout.statePrefix) && state.values[String($0.dropFirst(DynamoDBLayout.statePrefix.count))] == nil
            }
            try checkTransaction(state, dropped: dropped.count)
            do {
                try await transact(
                    [["Update": update]] + puts.map { ["Put": ["Item": .object($0)]] }
                        + dropped.map { ["Delete": ["Key": DynamoDBLayout.key(session.id, $0)]] })
            } catch let error as DynamoDBServiceError where error.conditionFailed(at: 0) {
                throw SessionStorageError(.versionConflict, "session \(session.id) changed since version \(session.version)")
            }
            return item.int("c") ?? 0
        }
        guard let created else { throw .sessionNotFound(session.id) }
        var updated = session
        updated.version = session.version + 1
        updated.lastActivity = now
        updated.createdAt = DynamoDBLayout.date(created)
        return updated
    }

    public func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) {
        let threshold = now.addingTimeInterval(-policy.activityWriteInterval.timeInterval)
        let found = try await perform("touching session \(id)") { [self] in
            do {
                _ = try await call(
                    "UpdateItem",
                    [
                        "Key": sessionKey(id), "UpdateExpression": "SET a = :now, #ttl = :ttl",
                        "ConditionExpression": "attribute_exists(pk) AND a < :threshold", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        "ExpressionAttributeNames": ["#ttl": "ttl"],
                        "ExpressionAttributeValues": [
                            ":now": AttributeValue.n(DynamoDBLayout.micros(now)), ":ttl": AttributeValue.n(expiry(after: now)),
                            ":threshold": AttributeValue.n(DynamoDBLayout.micros(threshold)),
                        ],
                    ])
                return true
            } catch let error as DynamoDBServiceError where error.isConditionFailure {
                // Recent enough already, or missing: the failure carries the item when it exists.
                return error.returnedItem ? true : try await exists(id)
            }
        }
        guard found else { throw .sessionNotFound(id) }
    }

    @discardableResult
    public func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool {
        try await perform("deleting session \(id)") { [self] in
            // The session item first: from then on every write to the session fails its condition.
            let answer = try await call("DeleteItem", ["Key": sessionKey(id), "ReturnValues": "ALL_OLD"])
            try await deleteItems(of: id)
            return answer.item("Attributes") != nil
        }
    }
}
