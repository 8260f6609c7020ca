import Foundation
@_spi(Backend) import MCPSessionStorage

/// A DynamoDB item, key or set of expression values: attribute name → attribute value in the
/// JSON protocol's form (`{"S": "…"}`, `{"N": "…"}`, `{"BOOL": true}`).
typealias DynamoItem = [String: JSONValue]

/// Attribute values in the JSON protocol's form.
enum AttributeValue {
    static func s(_ text: String) -> JSONValue { .object(["S": .string(text)]) }
    static func n(_ number: Int64) -> JSONValue { .object(["N": .string(String(number))]) }
    static func n(_ number: Int) -> JSONValue { n(Int64(number)) }
    static func bool(_ value: Bool) -> JSONValue { .object(["BOOL": .bool(value)]) }
}

extension Dictionary where Key == String, Value == JSONValue {
    func string(_ name: String) -> String? { self[name]?[member: "S"]?.stringValue }
    func int(_ name: String) -> Int64? { self[name]?[member: "N"]?.stringValue.flatMap { Int64($0) } }
    func bool(_ name: String) -> Bool? {
        if case .bool(let value)? = self[name]?[member: "BOOL"] { return value }
        return nil
    }
    /// The answer's `Item`, `Attributes` or other object member as an item.
    func item(_ name: String) -> DynamoItem? {
        if case .object(let item)? = self[name] { return item }
        return nil
    }
    /// The answer's `Items` as items.
    func items(_ name: String = "Items") -> [DynamoItem] {
        guard case .array(let items)? = self[name] else { return [] }
        return items.compactMap { if case .object(let item) = $0 { item } else { nil } }
    }
}

/// The table's layout: one table, a session's items under its id.
///
/// | item | `pk` | `sk` | attributes |
/// |---|---|---|---|
/// | session | id | `s` | `c` created, `a` last activity (µs), `i`, `p`, `ci`, `cc`, `sc`, `m` (JSON), `v` version, `b` state bytes, `e` last event id, `f` first event id kept, `ab` index bucket, `ttl` |
/// | state | id | `t#` key | `j` value JSON, `n` bytes it counts |
/// | event | id | `e#` id (20 digits) | `x` stream + U+0001 + id, `t` time (µs), `y` type, `d` data JSON, `r` retry, `ttl` |
/// | lease | id | `l#` name | `h` holder, `g` generation |
///
/// Indexes: `stream` (local: `pk`, `x`; replay of one stream, strongly consistent), `activity`
/// (global: `ab`, `a`; expiry), `ids` (global: `ab`, `pk`; listing and counting).
enum DynamoDBLayout {
    static let sessionSK = "s"
    static let statePrefix = "t#"
    static let eventPrefix = "e#"
    static let leasePrefix = "l#"
    static let streamIndex = "stream"
    static let activityIndex = "activity"
    static let idsIndex = "ids"

    static func key(_ id: SessionID, _ sk: String) -> JSONValue {
        .object(["pk": AttributeValue.s(id.rawValue), "sk": AttributeValue.s(sk)])
    }
    static func stateSK(_ key: String) -> String { statePrefix + key }
    static func eventSK(_ id: Int64) -> String { eventPrefix + padded(id) }
    static func leaseSK(_ name: String) -> String { leasePrefix + name }
    static func padded(_ id: Int64) -> String {
        let digits = String(max(0, id))
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }
    /// The stream index's sort key: the stream, U+0001 (below any character a stream id may
    /// hold), the id in 20 digits.
    static func streamKey(_ stream: StreamID, _ id: Int64) -> String { stream.rawValue + "\u{1}" + padded(id) }

    /// A time as stored: whole microseconds since 1970.
    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
    static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(micros) / 1_000_000) }

    /// The index bucket of a session id: FNV-1a of its bytes.
    static func bucket(of id: SessionID, buckets: Int) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in id.rawValue.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return Int(hash % UInt32(buckets))
    }

    static func json(_ value: JSONValue?) throws(SessionStorageError) -> String? {
        guard let value else { return nil }
        return String(decoding: try value.encoded(), as: UTF8.self)
    }

    static func parse(_ text: String?, _ what: @autoclosure () -> String) throws(SessionStorageError) -> JSONValue? {
        guard let text else { return nil }
        do { return try JSONValue.decode(Data(text.utf8)) } catch { throw SessionStorageError.corrupted("\(what()) is not JSON", underlying: error) }
    }

    /// Stored JSON text, checked but not decoded.
    static func text(_ text: String?, _ what: @autoclosure () -> String) throws(SessionStorageError) -> JSONText? {
        guard let text else { return nil }
        do { return try JSONText(validating: Array(text.utf8)) } catch {
            throw SessionStorageError.corrupted("\(what()) is not JSON", underlying: error)
        }
    }

    /// A session from its item and its state items.
    static func session(_ id: SessionID, item: DynamoItem, state: [DynamoItem]) throws(SessionStorageError) -> SessionInfo {
        guard let created = item.int("c"), let activity = item.int("a"), let version = item.int("v"),
            case .object(let metadata)? = try parse(item.string("m"), "the metadata of \(id)")
        else { throw SessionStorageError.corrupted("session \(id) is missing its times, version or metadata") }
        var values: [String: JSONValue] = [:]
        for entry in state {
            guard let sk = entry.string("sk"), sk.hasPrefix(statePrefix), let json = entry.string("j") else {
                throw SessionStorageError.corrupted("a state item of \(id) is malformed")
            }
            let key = String(sk.dropFirst(statePrefix.count))
            values[key] = try parse(json, "state value '\(key)' of \(id)")
        }
        return SessionInfo(
            id: id, createdAt: date(created), lastActivity: date(activity), isInitialized: item.bool("i") ?? false,
            protocolVersion: item.string("p"), clientInfo: try parse(item.string("ci"), "the client info of \(id)"),
            clientCapabilities: try parse(item.string("cc"), "the client capabilities of \(id)"),
            serverCapabilities: try parse(item.string("sc"), "the server capabilities of \(id)"), metadata: metadata, state: values, version: version)
    }

    /// An event from its item.
    static func event(_ item: DynamoItem) throws(SessionStorageError) -> SSEEvent {
        guard let sk = item.string("sk"), let id = Int64(sk.dropFirst(eventPrefix.count)), let x = item.string("x"),
            let separator = x.lastIndex(of: "\u{1}"), let time = item.int("t")
        else { throw SessionStorageError.corrupted("a stored event is malformed") }
        let stream: StreamID
        do { stream = try StreamID(validating: String(x[..<separator])) } catch {
            throw SessionStorageError.corrupted("stored event \(id) has a bad stream")
        }
        return SSEEvent(
            id: id, stream: stream, timestamp: date(time), type: item.string("y"), encodedData: try text(item.string("d"), "the data of event \(id)"),
            retryMilliseconds: item.int("r").map { Int($0) })
    }
}
