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
public struct SSEEvent: Sendable, Hashable, Codable {
    /// Assigned by the storage: strictly increasing within the session, across all its streams.
    public var id: Int64
    /// The stream it was sent on.
    public var stream: StreamID
    /// When it was stored.
    public var timestamp: Date
    /// The SSE `event:` field; `nil` means the default (`message`).
    public var type: String?
    /// The JSON-RPC message; `nil` for a priming event.
    public var data: JSONValue?
    /// The SSE `retry:` field, in milliseconds.
    public var retryMilliseconds: Int?

    public init(id: Int64, stream: StreamID, timestamp: Date, type: String? = nil, data: JSONValue?, retryMilliseconds: Int? = nil) {
        self.id = id
        self.stream = stream
        self.timestamp = timestamp
        self.type = type
        self.data = data
        self.retryMilliseconds = retryMilliseconds
    }

    /// The stored form of `event` under `id`.
    public init(id: Int64, event: NewEvent, timestamp: Date) {
        self.init(id: id, stream: event.stream, timestamp: timestamp, type: event.type, data: event.data, retryMilliseconds: event.retryMilliseconds)
    }
}
