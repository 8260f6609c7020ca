import Hummingbird
import MCPSessionStorage

/// The SSE `id` of a stored event: `<event id>-<16 hex digits naming the session>`.
///
/// Event ids count per session, so the number alone would mean something in every session; the
/// session tag makes a `Last-Event-ID` from another session recognisable, and it replays nothing.
/// The stream is not in the id: storage knows each event's stream.
struct EventCursor: Hashable, Sendable {
    var eventID: Int64
    var sessionTag: UInt64

    init(eventID: Int64, session: SessionID) {
        self.eventID = eventID
        self.sessionTag = Self.tag(session)
    }

    /// Parses a `Last-Event-ID`; `nil` for text this server never sent.
    init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].utf8.count == 16, let eventID = Int64(parts[0]), eventID > 0,
            let tag = UInt64(parts[1], radix: 16)
        else { return nil }
        self.eventID = eventID
        self.sessionTag = tag
    }

    func belongs(to session: SessionID) -> Bool { sessionTag == Self.tag(session) }

    var text: String {
        let hex = String(sessionTag, radix: 16)
        return "\(eventID)-" + String(repeating: "0", count: 16 - hex.utf8.count) + hex
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
    /// One stored event as SSE: `id`, optional `retry`, and the message as one `data` line (the
    /// compact JSON encoding holds no newline). A priming event has an empty `data`.
    static func frame(_ event: SSEEvent, session: SessionID) throws(SessionStorageError) -> ByteBuffer {
        var text = "id: \(EventCursor(eventID: event.id, session: session).text)\n"
        if let retry = event.retryMilliseconds { text += "retry: \(retry)\n" }
        if let data = event.data {
            text += "event: message\ndata: "
            text += String(decoding: try data.encoded(), as: UTF8.self)
            text += "\n\n"
        } else {
            text += "data: \n\n"
        }
        return ByteBuffer(string: text)
    }

    /// A message sent without storing it (an error while the store is down).
    static func frame(unstored message: JSONValue) -> ByteBuffer {
        let data = (try? message.encoded()).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "event: message\ndata: \(data)\n\n")
    }

    /// A comment line, which clients ignore: keeps idle connections open and finds dead ones.
    static let keepAlive = ByteBuffer(string: ": keep-alive\n\n")
}
