import Hummingbird
import MCPSessionStorage

/// An SSE `id`: a position in a session's events, `<event id>-<16 hex digits naming the session>`,
/// or, for a priming event, `<event id>-<session tag>-<the stream's bytes in hex>`.
///
/// Event ids count per session, so the number alone would mean something in every session; the
/// session tag makes a `Last-Event-ID` from another session recognisable, and it replays nothing.
/// A stored event's id needs no stream: storage knows each event's stream. A priming event is
/// not stored, so its id names the stream and a position on it (the session's newest event id
/// when the stream opened, or 0 for a request's stream, whose id is new to the session).
struct EventCursor: Hashable, Sendable {
    var eventID: Int64
    var sessionTag: UInt64
    var stream: StreamID?

    init(eventID: Int64, session: SessionID, stream: StreamID? = nil) {
        self.eventID = eventID
        self.sessionTag = Self.tag(session)
        self.stream = stream
    }

    /// Parses a `Last-Event-ID`; `nil` for text this server never sent.
    init?(_ text: String) {
        let parts = text.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[1].utf8.count == 16, let eventID = Int64(parts[0]), eventID >= 0,
            let tag = UInt64(parts[1], radix: 16)
        else { return nil }
        self.eventID = eventID
        self.sessionTag = tag
        if parts.count == 3 {
            guard let bytes = Self.bytes(hex: parts[2]), let text = String(validating: bytes, as: UTF8.self),
                let stream = try? StreamID(validating: text)
            else { return nil }
            self.stream = stream
        } else {
            guard eventID > 0 else { return nil }
            self.stream = nil
        }
    }

    func belongs(to session: SessionID) -> Bool { sessionTag == Self.tag(session) }

    var text: String {
        let hex = String(sessionTag, radix: 16)
        var text = "\(eventID)-" + String(repeating: "0", count: 16 - hex.utf8.count) + hex
        if let stream {
            text += "-" + stream.rawValue.utf8.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
        return text
    }

    private static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard !digits.isEmpty, digits.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// FNV-1a, 64-bit: stable across processes and releases, unlike `Hasher`.
    static func tag(_ session: SessionID) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in session.rawValue.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// Server-sent event framing.
enum SSE {
    /// One stored event as SSE: `id`, optional `retry`, and the message as one `data` line: the
    /// stored text as it is, which is compact JSON and holds no line break. An event without data
    /// has an empty `data`.
    static func frame(_ event: SSEEvent, session: SessionID) throws(SessionStorageError) -> ByteBuffer {
        var text = "id: \(EventCursor(eventID: event.id, session: session).text)\n"
        if let retry = event.retryMilliseconds { text += "retry: \(retry)\n" }
        guard var data = try event.encodedData() else { return ByteBuffer(string: text + "data: \n\n") }
        // Whitespace between tokens may hold a line break, which would end the `data` line; no
        // storage writes such text, but one edited by hand is sent compact all the same.
        if data.bytes.contains(where: { $0 == 0x0A || $0 == 0x0D }) { data = try JSONText(data.value) }
        text += "event: message\ndata: "
        var buffer = ByteBuffer()
        buffer.reserveCapacity(text.utf8.count + data.bytes.count + 2)
        buffer.writeString(text)
        buffer.writeBytes(data.bytes)
        buffer.writeString("\n\n")
        return buffer
    }

    /// A priming event: an id to resume from and the reconnection delay, with empty data. It
    /// is not stored; its id names the stream and the position (see ``EventCursor``).
    static func priming(_ cursor: EventCursor, retry: Duration) -> ByteBuffer {
        // Clamped: a configured interval past Int milliseconds must not trap on every request.
        let milliseconds = retry / .milliseconds(1)
        let field = milliseconds < Double(Int.max) ? Int(max(0, milliseconds)) : Int.max
        return ByteBuffer(string: "id: \(cursor.text)\nretry: \(field)\ndata: \n\n")
    }

    /// A message sent without storing it (an error while the store is down).
    static func frame(unstored message: JSONValue) -> ByteBuffer {
        let data = (try? message.encoded()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "event: message\ndata: \(data)\n\n")
    }

    /// A comment line, which clients ignore: keeps idle connections open and finds dead ones.
    static let keepAlive = ByteBuffer(string: ": keep-alive\n\n")
}
