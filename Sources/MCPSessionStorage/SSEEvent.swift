import Foundation

/// An event to append; the storage assigns its id and timestamp.
public struct NewEvent: Sendable, Hashable {
    /// The stream it is sent on.
    public var stream: StreamID
    /// The SSE `event:` field; `nil` means the default (`message`).
    public var type: String?
    /// The JSON-RPC message; `nil` for a priming event (an id and `retry` with no data).
    public var data: JSONValue?
    /// The SSE `retry:` field, in milliseconds.
    public var retryMilliseconds: Int?

    public init(stream: StreamID, type: String? = nil, data: JSONValue?, retryMilliseconds: Int? = nil) {
        self.stream = stream
        self.type = type
        self.data = data
        self.retryMilliseconds = retryMilliseconds
    }
}

/// An SSE event as stored, so a client can resume a stream with `Last-Event-ID`.
///
/// An event read back from a storage keeps its message as the stored JSON text and decodes it
/// only when ``data`` is read; ``encodedData()`` hands that text on without decoding, which is
/// all a server needs to send the event again.
public struct SSEEvent: Sendable, Hashable, Codable {
    /// Assigned by the storage: strictly increasing within the session, across all its streams.
    public var id: Int64
    /// The stream it was sent on.
    public var stream: StreamID
    /// When it was stored.
    public var timestamp: Date
    /// The SSE `event:` field; `nil` means the default (`message`).
    public var type: String?
    /// The SSE `retry:` field, in milliseconds.
    public var retryMilliseconds: Int?
    private var payload: Payload

    /// The message: a decoded value, or the text a storage read back (decoded on each read).
    private enum Payload: Sendable {
        case none
        case value(JSONValue)
        case text(JSONText)
    }

    /// The JSON-RPC message; `nil` for a priming event.
    ///
    /// For an event read from a storage, each read decodes the stored text; read it once and
    /// keep the value, or use ``encodedData()`` to pass the message on.
    public var data: JSONValue? {
        get {
            switch payload {
            case .none: nil
            case .value(let value): value
            case .text(let text): text.value
            }
        }
        set { payload = newValue.map(Payload.value) ?? .none }
    }

    /// The message as compact JSON text: the stored text itself for an event read from a
    /// storage, else ``data`` encoded.
    /// - Returns: `nil` for a priming event.
    /// - Throws: `invalidInput` when ``data`` holds a non-finite number, which JSON cannot hold.
    public func encodedData() throws(SessionStorageError) -> JSONText? {
        switch payload {
        case .none: nil
        case .value(let value): try JSONText(value)
        case .text(let text): text
        }
    }

    /// The size of the message's text when it is held as text, else `nil` (for memory estimates).
    var storedTextCount: Int? {
        guard case .text(let text) = payload else { return nil }
        return text.bytes.count
    }

    public init(id: Int64, stream: StreamID, timestamp: Date, type: String? = nil, data: JSONValue?, retryMilliseconds: Int? = nil) {
        self.id = id
        self.stream = stream
        self.timestamp = timestamp
        self.type = type
        self.payload = data.map(Payload.value) ?? .none
        self.retryMilliseconds = retryMilliseconds
    }

    /// An event whose message is JSON text, as a storage reads it back.
    public init(id: Int64, stream: StreamID, timestamp: Date, type: String? = nil, encodedData: JSONText?, retryMilliseconds: Int? = nil) {
        self.init(id: id, stream: stream, timestamp: timestamp, type: type, data: nil, retryMilliseconds: retryMilliseconds)
        self.payload = encodedData.map(Payload.text) ?? .none
    }

    /// The stored form of `event` under `id`.
    public init(id: Int64, event: NewEvent, timestamp: Date) {
        self.init(id: id, stream: event.stream, timestamp: timestamp, type: event.type, data: event.data, retryMilliseconds: event.retryMilliseconds)
    }

    /// The stored form of `event` under `id`, with the message as the storage encoded it
    /// (``SessionPolicy/encodeEvent(_:)``), so that it reads back exactly as a later read would.
    public init(id: Int64, event: NewEvent, encodedData: JSONText?, timestamp: Date) {
        self.init(
            id: id, stream: event.stream, timestamp: timestamp, type: event.type, encodedData: encodedData,
            retryMilliseconds: event.retryMilliseconds)
    }

    /// Equal when every field is, the messages compared as values (equal texts are equal values).
    public static func == (lhs: SSEEvent, rhs: SSEEvent) -> Bool {
        guard lhs.id == rhs.id, lhs.stream == rhs.stream, lhs.timestamp == rhs.timestamp, lhs.type == rhs.type,
            lhs.retryMilliseconds == rhs.retryMilliseconds
        else { return false }
        if case .text(let left) = lhs.payload, case .text(let right) = rhs.payload, left == right { return true }
        return lhs.data == rhs.data
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(stream)
        hasher.combine(timestamp)
        hasher.combine(type)
        hasher.combine(retryMilliseconds)
        hasher.combine(data)
    }

    private enum CodingKeys: String, CodingKey {
        case id, stream, timestamp, type, data, retryMilliseconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(Int64.self, forKey: .id), stream: try container.decode(StreamID.self, forKey: .stream),
            timestamp: try container.decode(Date.self, forKey: .timestamp), type: try container.decodeIfPresent(String.self, forKey: .type),
            data: try container.decodeIfPresent(JSONValue.self, forKey: .data),
            retryMilliseconds: try container.decodeIfPresent(Int.self, forKey: .retryMilliseconds))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(stream, forKey: .stream)
        try container.encode(timestamp, forKey: .timestamp)
        try container.encodeIfPresent(type, forKey: .type)
        try container.encodeIfPresent(data, forKey: .data)
        try container.encodeIfPresent(retryMilliseconds, forKey: .retryMilliseconds)
    }
}
