import Foundation

/// Which SSE stream of a session an event was sent on: the stream answering one JSON-RPC
/// request, or the standalone GET stream for server-initiated messages.
public struct StreamID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The stream's text. Request streams use the JSON-RPC id as JSON (`7`, `"abc"`), so the
    /// standalone stream's `"GET"` cannot collide with one.
    public let rawValue: String

    /// The longest stream id accepted.
    public static let maxLength = 256

    /// Checks the text: 1–256 bytes, no control characters (so it can travel in line-based
    /// formats: SSE, bus messages).
    public init(validating text: String) throws(SessionStorageError) {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength, !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw SessionStorageError(.invalidInput, "stream id must be 1–\(Self.maxLength) bytes without control characters")
        }
        self.rawValue = text
    }

    private init(unchecked text: String) { self.rawValue = text }

    /// The standalone stream a client opens with `GET /mcp`.
    public static let standalone = StreamID(unchecked: "GET")

    /// The stream answering the request with this JSON-RPC id: the id's compact JSON text, with
    /// DEL written as `\u007f` (the same JSON value, without the control character). Any string
    /// or integer id whose text fits in ``maxLength`` bytes makes a valid stream id; a longer
    /// one is `invalidInput`.
    public static func request(_ id: JSONValue) throws(SessionStorageError) -> StreamID {
        var bytes = try id.encoded()
        if bytes.contains(0x7F) {
            // DEL can only stand inside a JSON string, where its escape means the same character.
            bytes = Data(bytes.flatMap { $0 == 0x7F ? Array(#"\u007f"#.utf8) : [$0] })
        }
        guard bytes.count <= Self.maxLength else {
            throw SessionStorageError(
                .invalidInput, "request id is \(bytes.count) bytes as JSON; ids up to \(Self.maxLength) bytes are accepted")
        }
        return try StreamID(validating: String(decoding: bytes, as: UTF8.self))
    }

    public init(from decoder: any Decoder) throws {
        try self.init(validating: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}
