import Foundation
@_spi(Backend) import MCPSessionStorage

// Events: one item per event under `e#<id>`, and in the local index `stream` under
// `<stream>\u{1}<id>`. The session item counts the last id given out (`e`) and the first kept (`f`).
//
// Appending takes the next id with one atomic `UpdateItem ADD` (two instances never share an id,
// and no one reads a maximum to add one), then writes the event in a transaction with a check that
// `f` has not passed it: trimming raises `f` before deleting, so an event whose write arrives after
// the trim of its id is never stored, and retention holds.

extension DynamoDBSessionStorage {
    @discardableResult
    public func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let data = try policy.encodeEvent(event)
        let now = Date()
        let keep = Int64(max(1, policy.maxEventsPerSession))
        let eventID: Int64? = try await perform("appending an event to \(id)") { [self] in
            let counters: [String: JSONValue]
            do {
                counters = try await call(
                    "UpdateItem",
                    [
                        "Key": sessionKey(id), "UpdateExpression": "SET e = e + :one, a = :now, #ttl = :ttl, f = if_not_exists(f, :one)",
                        "ConditionExpression": "attribute_exists(pk)", "ReturnValues": "ALL_NEW", "ExpressionAttributeNames": ["#ttl": "ttl"],
                        "ExpressionAttributeValues": [
                            ":one": AttributeValue.n(1), ":now": AttributeValue.n(DynamoDBLayout.micros(now)),
                            ":ttl": AttributeValue.n(expiry(after: now)),
                        ],
                    ])
            } catch let error as DynamoDBServiceError where error.isConditionFailure {
                return nil
            }
            guard let attributes = counters.item("Attributes"), let number = attributes.int("e"), let first = attributes.int("f") else {
                throw SessionStorageError.corrupted("the event counter of \(id) is malformed")
            }
            var item: DynamoItem = [
                "pk": AttributeValue.s(id.rawValue), "sk": AttributeValue.s(DynamoDBLayout.eventSK(number)),
                "x": AttributeValue.s(DynamoDBLayout.streamKey(event.stream, number)), "t": AttributeValue.n(DynamoDBLayout.micros(now)),
                "ttl": AttributeValue.n(expiry(after: now)),
            ]
            if let type = event.type { item["y"] = AttributeValue.s(type) }
            if let data { item["d"] = AttributeValue.s(data.string) }
            if let retry = event.retryMilliseconds { item["r"] = AttributeValue.n(retry) }
            let put: [[String: [String: JSONValue]]] = [
                [
                    "ConditionCheck": [
                        "Key": sessionKey(id), "ConditionExpression": "f <= :id", "ExpressionAttributeValues": [":id": AttributeValue.n(number)],
                    ]
                ],
                ["Put": ["Item": .object(item)]],
            ]
            async let written: Void = writeEvent(put)
            if number - keep + 1 > first { try await trim(id, below: number - keep + 1) }
            try await written
            return number
        }
        guard let eventID else { throw .sessionNotFound(id) }
        return SSEEvent(id: eventID, event: event, encodedData: data, timestamp: DynamoDBLayout.date(DynamoDBLayout.micros(now)))
    }

    /// Writes an event if its id is not trimmed yet: one trimmed before it was written (or whose
    /// session went) is kept nowhere, as retention says.
    private func writeEvent(_ put: [[String: [String: JSONValue]]]) async throws {
        do { try await transact(put) } catch let error as DynamoDBServiceError where error.conditionFailed(at: 0) {}
    }

    /// Raises the first kept id to `first` (if it is below), then deletes the events below it
    /// that this call moved past. Returns how many of those existed.
    @discardableResult
    func trim(_ id: SessionID, below first: Int64) async throws -> Int {
        let previous: Int64
        do {
            let answer = try await call(
                "UpdateItem",
                [
                    "Key": sessionKey(id), "UpdateExpression": "SET f = :first", "ConditionExpression": "attribute_exists(pk) AND f < :first",
                    "ReturnValues": "UPDATED_OLD", "ExpressionAttributeValues": [":first": AttributeValue.n(first)],
                ])
            previous = answer.item("Attributes")?.int("f") ?? 1
        } catch let error as DynamoDBServiceError where error.isConditionFailure {
            return 0  // trimmed this far already, by a concurrent call
        }
        let keys = try await query([
            "KeyConditionExpression": "pk = :id AND sk BETWEEN :from AND :to", "ConsistentRead": true, "ProjectionExpression": "pk, sk",
            "ExpressionAttributeValues": [
                ":id": AttributeValue.s(id.rawValue), ":from": AttributeValue.s(DynamoDBLayout.eventSK(previous)),
                ":to": AttributeValue.s(DynamoDBLayout.eventSK(first - 1)),
            ],
        ]).compactMap { item -> JSONValue? in
            guard let pk = item["pk"], let sk = item["sk"] else { return nil }
            return .object(["pk": pk, "sk": sk])
        }
        try await batchDelete(keys)
        return keys.count
    }

    /// The events of `stream` with ids in `after+1 …`, oldest first, from the stream index.
    func streamEvents(_ id: SessionID, _ stream: StreamID, after: Int64, limit: Int?) async throws -> [SSEEvent] {
        if let limit, limit <= 0 { return [] }
        let items = try await query(
            [
                "IndexName": .string(DynamoDBLayout.streamIndex), "KeyConditionExpression": "pk = :id AND x BETWEEN :from AND :to",
                "ConsistentRead": true,
                "ExpressionAttributeValues": [
                    ":id": AttributeValue.s(id.rawValue), ":from": AttributeValue.s(DynamoDBLayout.streamKey(stream, max(0, after) + 1)),
                    ":to": AttributeValue.s(stream.rawValue + "\u{1}" + String(repeating: "9", count: 20)),
                ],
            ], limit: limit)
        return try items.map { (item) throws(SessionStorageError) in try DynamoDBLayout.event(item) }
    }

    public func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        let events: [SSEEvent]? = try await perform("replaying events of \(id)") { [self] in
            guard eventID > 0,
                let cursor = try await call(
                    "GetItem", ["Key": DynamoDBLayout.key(id, DynamoDBLayout.eventSK(eventID)), "ConsistentRead": true, "ProjectionExpression": "x"]
                ).item("Item")?.string("x"), let separator = cursor.lastIndex(of: "\u{1}")
            else { return try await exists(id) ? [] : nil }
            let stream = try StreamID(validating: String(cursor[..<separator]))
            return try await streamEvents(id, stream, after: eventID, limit: limit)
        }
        guard let events else { throw .sessionNotFound(id) }
        return events
    }

    public func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        let events: [SSEEvent]? = try await perform("replaying stream \(stream) of \(id)") { [self] in
            let found = try await streamEvents(id, stream, after: eventID, limit: limit)
            if found.isEmpty, !(try await exists(id)) { return nil }
            return found
        }
        guard let events else { throw .sessionNotFound(id) }
        return events
    }

    public func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? {
        let item: DynamoItem?? = try await perform("reading event \(eventID) of \(id)") { [self] in
            if eventID > 0,
                let item = try await call("GetItem", ["Key": DynamoDBLayout.key(id, DynamoDBLayout.eventSK(eventID)), "ConsistentRead": true])
                    .item("Item")
            {
                return .some(item)
            }
            return try await exists(id) ? .some(nil) : nil
        }
        guard let item else { throw .sessionNotFound(id) }
        return try item.map { (item) throws(SessionStorageError) in try DynamoDBLayout.event(item) }
    }

    public func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] {
        let events: [SSEEvent]? = try await perform("reading recent events of \(id)") { [self] in
            var found: [SSEEvent] = []
            if limit > 0 {
                // Newest first, then turned around.
                let items = try await query(
                    [
                        "KeyConditionExpression": "pk = :id AND begins_with(sk, :e)", "ConsistentRead": true, "ScanIndexForward": false,
                        "ExpressionAttributeValues": [":id": AttributeValue.s(id.rawValue), ":e": AttributeValue.s(DynamoDBLayout.eventPrefix)],
                    ], limit: limit)
                found = try items.reversed().map { (item) throws(SessionStorageError) in try DynamoDBLayout.event(item) }
            }
            if found.isEmpty, !(try await exists(id)) { return nil }
            return found
        }
        guard let events else { throw .sessionNotFound(id) }
        return events
    }

    @discardableResult
    public func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int {
        let count: Int? = try await perform("deleting events of \(id)") { [self] in
            let answer = try await call("GetItem", ["Key": sessionKey(id), "ConsistentRead": true, "ProjectionExpression": "e, f"])
            guard let item = answer.item("Item"), let last = item.int("e"), let first = item.int("f") else { return nil }
            let target = min(eventID, last + 1)
            guard target > first else { return 0 }
            return try await trim(id, below: target)
        }
        guard let count else { throw .sessionNotFound(id) }
        return count
    }
}
