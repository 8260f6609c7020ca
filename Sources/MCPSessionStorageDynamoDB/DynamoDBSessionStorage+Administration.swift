import Foundation
@_spi(Backend) import MCPSessionStorage

// Leases, listing, counting and expiry. Listing and expiry read the global indexes `ids` and
// `activity`, partitioned into ``Configuration/indexBuckets`` buckets by a hash of the id; global
// indexes are eventually consistent, so a session created a moment ago may be listed a moment
// later, and expiry confirms each candidate against the session item itself.

extension DynamoDBSessionStorage {
    // MARK: Leases

    public func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? {
        try policy.checkLease(name)
        let item: DynamoItem?? = try await perform("reading lease \(name) of \(id)") { [self] in
            let answer = try await call("GetItem", ["Key": DynamoDBLayout.key(id, DynamoDBLayout.leaseSK(name)), "ConsistentRead": true])
            if let item = answer.item("Item") { return .some(item) }
            return try await exists(id) ? .some(nil) : nil
        }
        guard let item else { throw .sessionNotFound(id) }
        guard let item else { return nil }
        guard let holder = item.string("h"), let generation = item.int("g") else {
            throw SessionStorageError.corrupted("a stored lease is malformed")
        }
        return Lease(holder: holder, generation: generation)
    }

    public func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool {
        try policy.checkLease(name, expected, new)
        let key = DynamoDBLayout.key(id, DynamoDBLayout.leaseSK(name))
        var condition: [String: JSONValue] = ["ConditionExpression": "attribute_not_exists(sk)"]
        if let expected {
            condition = [
                "ConditionExpression": "h = :h AND g = :g",
                "ExpressionAttributeValues": [":h": AttributeValue.s(expected.holder), ":g": AttributeValue.n(expected.generation)],
            ]
        }
        var write: [String: [String: JSONValue]]
        if let new {
            write = [
                "Put": condition.merging([
                    "Item": [
                        "pk": AttributeValue.s(id.rawValue), "sk": AttributeValue.s(DynamoDBLayout.leaseSK(name)), "h": AttributeValue.s(new.holder),
                        "g": AttributeValue.n(new.generation),
                    ]
                ]) { $1 }
            ]
        } else {
            write = ["Delete": condition.merging(["Key": key]) { $1 }]
        }
        let sessionExists: [String: [String: JSONValue]] = ["ConditionCheck": ["Key": sessionKey(id), "ConditionExpression": "attribute_exists(pk)"]]
        let outcome: Bool? = try await perform("swapping lease \(name) of \(id)") { [self, write] in
            if expected == nil && new == nil {
                // Nothing to write: whether nobody holds it, and the session exists.
                let items = try await batchGet([sessionKey(id), key], projection: "sk")
                guard items.contains(where: { $0.string("sk") == DynamoDBLayout.sessionSK }) else { return nil }
                return items.count == 1
            }
            do {
                try await transact([sessionExists, write])
                return true
            } catch let error as DynamoDBServiceError where error.conditionFailed(at: 0) {
                return nil
            } catch let error as DynamoDBServiceError where error.conditionFailed(at: 1) {
                return false
            }
        }
        guard let outcome else { throw .sessionNotFound(id) }
        return outcome
    }

    // MARK: Administration

    /// Pages through the `ids` index, bucket by bucket: the order is (bucket of the id, id).
    public func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] {
        guard limit > 0 else { return [] }
        let buckets = configuration.indexBuckets
        return try await perform("listing sessions") { [self] in
            var ids: [SessionID] = []
            var bucket = cursor.map { DynamoDBLayout.bucket(of: $0, buckets: buckets) } ?? 0
            var after = cursor
            while ids.count < limit, bucket < buckets {
                var values: [String: JSONValue] = [":b": AttributeValue.s(String(bucket))]
                var condition = "ab = :b"
                if let after {
                    condition += " AND pk > :after"
                    values[":after"] = AttributeValue.s(after.rawValue)
                }
                let items = try await query(
                    [
                        "IndexName": .string(DynamoDBLayout.idsIndex), "KeyConditionExpression": .string(condition),
                        "ExpressionAttributeValues": .object(values),
                    ],
                    limit: limit - ids.count)
                ids += items.compactMap { $0.string("pk").flatMap { try? SessionID(validating: $0) } }
                bucket += 1
                after = nil
            }
            return ids
        }
    }

    /// Reads the `activity` index for sessions last active before the cutoff, bucket by bucket;
    /// each candidate's session item is deleted only if its own activity is still before the
    /// cutoff (the index may lag), then its other items.
    @discardableResult
    public func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] {
        let limit = AttributeValue.n(DynamoDBLayout.micros(cutoff))
        return try await perform("expiring sessions", timeout: max(configuration.operationTimeout, .seconds(60))) { [self] in
            var expired: [SessionID] = []
            for bucket in 0..<configuration.indexBuckets {
                let candidates = try await query([
                    "IndexName": .string(DynamoDBLayout.activityIndex), "KeyConditionExpression": "ab = :b AND a < :cutoff",
                    "ExpressionAttributeValues": [":b": AttributeValue.s(String(bucket)), ":cutoff": limit],
                ])
                for candidate in candidates {
                    guard let text = candidate.string("pk"), let id = try? SessionID(validating: text) else { continue }
                    do {
                        _ = try await call(
                            "DeleteItem",
                            [
                                "Key": sessionKey(id), "ConditionExpression": "a < :cutoff",
                                "ExpressionAttributeValues": [":cutoff": limit],
                            ])
                    } catch let error as DynamoDBServiceError where error.isConditionFailure {
                        continue  // active since the index was written, or gone already
                    }
                    try await deleteItems(of: id)
                    expired.append(id)
                }
            }
            return expired
        }
    }

    public func sessionCount() async throws(SessionStorageError) -> Int {
        try await perform("counting sessions") { [self] in
            var total = 0
            for bucket in 0..<configuration.indexBuckets {
                total += try await count([
                    "IndexName": .string(DynamoDBLayout.idsIndex), "KeyConditionExpression": "ab = :b",
                    "ExpressionAttributeValues": [":b": AttributeValue.s(String(bucket))],
                ])
            }
            return total
        }
    }

    /// Counts each session's event items: administration that reads every session's keys.
    public func eventCount() async throws(SessionStorageError) -> Int {
        let ids = try await allSessionIDs()
        return try await perform("counting events", timeout: max(configuration.operationTimeout, .seconds(60))) { [self] in
            var total = 0
            for id in ids {
                total += try await count([
                    "KeyConditionExpression": "pk = :id AND begins_with(sk, :e)", "ConsistentRead": true,
                    "ExpressionAttributeValues": [":id": AttributeValue.s(id.rawValue), ":e": AttributeValue.s(DynamoDBLayout.eventPrefix)],
                ])
            }
            return total
        }
    }

    /// Nothing to do: DynamoDB keeps its own house, and its TTL backs up expiry.
    public func maintenance() async throws(SessionStorageError) {}
}
