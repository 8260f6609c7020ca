import Foundation
@_spi(Backend) import MCPSessionStorage

/// The keys of a session, all under one hash tag (`{…}`), so that a session lives in one Redis
/// Cluster slot. The id's `{`, `}` and `%` are percent-escaped in the tag, so no id can end the
/// tag early or leave it empty.
struct RedisKeys: Sendable {
    let prefix: String

    /// The session hash, state hash, events hash, stream index and leases hash, in the order the
    /// scripts expect them.
    func session(_ id: SessionID) -> [String] {
        let base = "\(prefix):{\(Self.tag(id))}"
        return [base + ":s", base + ":t", base + ":e", base + ":x", base + ":l"]
    }

    /// The index buckets: sessions by (a lower bound of) their last activity, and by id.
    static let buckets = 16
    func activityIndex(_ bucket: Int) -> String { "\(prefix):activity:{\(bucket)}" }
    func idIndex(_ bucket: Int) -> String { "\(prefix):ids:{\(bucket)}" }
    static func bucket(of id: SessionID) -> Int { Int(RedisSlots.crc16(Array(id.rawValue.utf8))) % buckets }

    static func tag(_ id: SessionID) -> String {
        var tag = ""
        tag.reserveCapacity(id.rawValue.utf8.count)
        for character in id.rawValue.unicodeScalars {
            switch character {
            case "{": tag += "%7B"
            case "}": tag += "%7D"
            case "%": tag += "%25"
            default: tag.unicodeScalars.append(character)
            }
        }
        return tag
    }
}

/// How the storage's values are written in Redis and read back.
enum RedisRecords {
    /// A time as Unix seconds with microseconds, as the scripts compare them.
    static func time(_ date: Date) -> String { String(format: "%.6f", date.timeIntervalSince1970) }

    static func date(_ text: String?) throws(SessionStorageError) -> Date {
        guard let text, let seconds = Double(text) else { throw SessionStorageError.corrupted("a stored time is malformed: \(text ?? "nil")") }
        return Date(timeIntervalSince1970: seconds)
    }

    static func json(_ value: JSONValue?) throws(SessionStorageError) -> String {
        guard let value else { return "" }
        return String(decoding: try value.encoded(), as: UTF8.self)
    }

    /// A session from the script `get`'s reply: its hash's fields and its state's.
    static func session(_ id: SessionID, fields: [RESPValue], state: [RESPValue]) throws(SessionStorageError) -> SessionInfo {
        var map: [String: String] = [:]
        var index = 0
        while index + 1 < fields.count {
            if let name = fields[index].string, let value = fields[index + 1].string { map[name] = value }
            index += 2
        }
        func parsed(_ name: String) throws(SessionStorageError) -> JSONValue? {
            guard let text = map[name] else { return nil }
            do { return try JSONValue.decode(Data(text.utf8)) } catch {
                throw SessionStorageError.corrupted("field \(name) of \(id) is not JSON", underlying: error)
            }
        }
        guard case .object(let metadata)? = try parsed("m"), let version = map["v"].flatMap({ Int64($0) }) else {
            throw SessionStorageError.corrupted("session \(id) is missing its metadata or version")
        }
        var values: [String: JSONValue] = [:]
        index = 0
        while index + 1 < state.count {
            guard let key = state[index].string, case .bulk(let bytes?) = state[index + 1] else {
                throw SessionStorageError.corrupted("the state of \(id) is malformed")
            }
            do { values[key] = try JSONValue.decode(Data(bytes)) } catch {
                throw SessionStorageError.corrupted("state value '\(key)' of \(id) is not JSON", underlying: error)
            }
            index += 2
        }
        return SessionInfo(
            id: id, createdAt: try date(map["c"]), lastActivity: try date(map["a"]), isInitialized: map["i"] == "1",
            protocolVersion: map["p"], clientInfo: try parsed("ci"), clientCapabilities: try parsed("cc"),
            serverCapabilities: try parsed("sc"), metadata: metadata, state: values, version: version)
    }

    /// An event as stored: `<stream bytes>:<stream><created>|<retry>|<type bytes>:<type><data>`.
    /// The stream comes first, length-prefixed, so a script can read it; the data (JSON, never
    /// empty) is the rest, empty for an event without one.
    static func encode(_ event: NewEvent, data: JSONText?, at now: Date) -> String {
        let type = event.type ?? ""
        return "\(event.stream.rawValue.utf8.count):\(event.stream.rawValue)\(time(now))|\(event.retryMilliseconds.map(String.init) ?? "")|"
            + "\(type.utf8.count):\(type)" + (data?.string ?? "")
    }

    static func decodeEvent(id: Int64, _ bytes: [UInt8]) throws(SessionStorageError) -> SSEEvent {
        var position = bytes.startIndex
        func fail() -> SessionStorageError { SessionStorageError.corrupted("stored event \(id) is malformed") }
        func number(until separator: UInt8) throws(SessionStorageError) -> Substring {
            guard let end = bytes[position...].firstIndex(of: separator) else { throw fail() }
            defer { position = end + 1 }
            return Substring(decoding: bytes[position..<end], as: UTF8.self)
        }
        func take(_ count: Int) throws(SessionStorageError) -> String {
            guard count >= 0, bytes.distance(from: position, to: bytes.endIndex) >= count else { throw fail() }
            defer { position += count }
            return String(decoding: bytes[position..<position + count], as: UTF8.self)
        }
        guard let streamLength = Int(try number(until: UInt8(ascii: ":"))) else { throw fail() }
        let streamText = try take(streamLength)
        guard let created = Double(try number(until: UInt8(ascii: "|"))) else { throw fail() }
        let retryText = try number(until: UInt8(ascii: "|"))
        guard let typeLength = Int(try number(until: UInt8(ascii: ":"))) else { throw fail() }
        let type = try take(typeLength)
        let stream: StreamID
        do { stream = try StreamID(validating: streamText) } catch { throw fail() }
        var data: JSONText?
        if position < bytes.endIndex {
            do { data = try JSONText(validating: Array(bytes[position...])) } catch {
                throw SessionStorageError.corrupted("the data of stored event \(id) is not JSON", underlying: error)
            }
        }
        return SSEEvent(
            id: id, stream: stream, timestamp: Date(timeIntervalSince1970: created), type: type.isEmpty ? nil : type, encodedData: data,
            retryMilliseconds: retryText.isEmpty ? nil : Int(retryText))
    }

    /// Events from a `[id, encoded, id, encoded, …]` reply.
    static func events(_ reply: [RESPValue]) throws(SessionStorageError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        events.reserveCapacity(reply.count / 2)
        var index = 0
        while index + 1 < reply.count {
            guard let id = reply[index].int, case .bulk(let bytes?) = reply[index + 1] else {
                throw SessionStorageError.corrupted("an events reply is malformed")
            }
            events.append(try decodeEvent(id: id, bytes))
            index += 2
        }
        return events
    }

    /// A lease as stored: `holder\0generation`.
    static func lease(_ lease: Lease?) -> String {
        guard let lease else { return "" }
        return lease.holder + "\u{0}" + String(lease.generation)
    }

    static func lease(_ text: String) throws(SessionStorageError) -> Lease {
        let parts = text.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let generation = Int64(parts[1]) else { throw SessionStorageError.corrupted("a stored lease is malformed") }
        return Lease(holder: String(parts[0]), generation: generation)
    }
}
