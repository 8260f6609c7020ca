import Logging

/// The text form of change messages, for buses that carry strings (NOTIFY payloads, pub/sub):
/// the one place that knows the format, including the pieces a write's own statement or script
/// splices together when it sends its message itself.
///
/// One message per line, `kind|origin|delivery|rest`:
///
/// | kind | meaning | rest |
/// |---|---|---|
/// | `c` | changed | `version|session` |
/// | `m` | may have changed | `session` |
/// | `d` | deleted | `session` |
/// | `t` | events deleted | `session` |
/// | `e` | event appended | `eventID|streamBytes|stream session` |
///
/// `delivery` is `-` for a transactional message, or its sequence number. The session id comes
/// last because it may hold `|`; the stream is length-prefixed for the same reason. A line is
/// at most about 450 bytes, far below PostgreSQL's 8000-byte NOTIFY limit; lines join with
/// newlines, which neither ids nor stream ids may contain.
public enum ChangeMessageText {
    /// One message as a line (without the line break).
    public static func encode(_ message: ChangeMessage) -> String {
        let head = "\(message.origin)|\(delivery(message.delivery))"
        switch message.change {
        case .changed(let id, let version): return "c|\(head)|\(version)|\(id.rawValue)"
        case .mayHaveChanged(let id): return "m|\(head)|\(id.rawValue)"
        case .deleted(let id): return "d|\(head)|\(id.rawValue)"
        case .eventsDeleted(let id): return "t|\(head)|\(id.rawValue)"
        case .eventAppended(let id, let stream, let eventID): return "e|\(head)|\(eventID)|\(streamAndSession(stream, id))"
        }
    }

    /// Parses one line; `nil` for text that is not a message (buses log and skip it).
    public static func decode(_ text: Substring) -> ChangeMessage? {
        let parts = text.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let delivery: ChangeMessage.Delivery
        if parts[2] == "-" {
            delivery = .transactional
        } else {
            guard let sequence = UInt64(parts[2]) else { return nil }
            delivery = .sequenced(sequence)
        }
        guard let change = change(kind: parts[0], parts[3]) else { return nil }
        return ChangeMessage(origin: String(parts[1]), delivery: delivery, change: change)
    }

    /// The messages of a received payload (one per line) as the signals a bus delivers, leaving
    /// out those `origin` sent (every instance hears its own too: skipped before decoding). A
    /// malformed line is logged at debug level and skipped.
    public static func signals(in payload: Substring, notFrom origin: String, logger: Logger) -> [BusSignal] {
        var signals: [BusSignal] = []
        for line in payload.split(separator: "\n") where !isSent(by: origin, line) {
            guard let message = decode(line) else {
                logger.debug("ignoring a malformed change message", metadata: ["payload": "\(line.prefix(200))"])
                continue
            }
            signals.append(.message(message))
        }
        return signals
    }

    /// Whether `line` was sent by `origin`, without decoding it: how a bus skips its own lines.
    public static func isSent(by origin: String, _ line: Substring) -> Bool {
        let body = line.utf8.dropFirst(2)
        return line.utf8.count > origin.utf8.count + 2 && body.starts(with: origin.utf8)
            && body.dropFirst(origin.utf8.count).first == UInt8(ascii: "|")
    }

    private static func change(kind: Substring, _ rest: Substring) -> SessionChange? {
        func id(_ text: Substring) -> SessionID? { try? SessionID(validating: String(text)) }
        switch kind {
        case "m": return id(rest).map(SessionChange.mayHaveChanged)
        case "d": return id(rest).map(SessionChange.deleted)
        case "t": return id(rest).map(SessionChange.eventsDeleted)
        case "c":
            let fields = rest.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
            guard fields.count == 2, let version = Int64(fields[0]), let id = id(fields[1]) else { return nil }
            return .changed(id, version: version)
        case "e":
            let fields = rest.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let eventID = Int64(fields[0]), let length = Int(fields[1]) else { return nil }
            let tail = fields[2].utf8
            guard length >= 0, length <= tail.count else { return nil }
            let split = tail.index(tail.startIndex, offsetBy: length)
            guard let streamText = String(tail[..<split]), let idText = String(tail[split...]),
                let stream = try? StreamID(validating: streamText), let id = id(Substring(idText))
            else { return nil }
            return .eventAppended(id, stream: stream, eventID: eventID)
        default: return nil
        }
    }

    private static func delivery(_ delivery: ChangeMessage.Delivery) -> String {
        switch delivery {
        case .transactional: "-"
        case .sequenced(let number): String(number)
        }
    }

    private static func streamAndSession(_ stream: StreamID, _ id: SessionID) -> String {
        "\(stream.rawValue.utf8.count)|\(stream.rawValue)\(id.rawValue)"
    }

    // MARK: Messages a write sends itself

    /// A transactional message whose write fills in one number (a version, an event id) it
    /// learns as it runs: the message is `prefix + number + suffix`. A statement or script that
    /// sends its own change splices these, and knows nothing else of the format.
    @_spi(Backend)
    public struct Template: Sendable, Hashable {
        /// The text before the number.
        public let prefix: String
        /// The text after it.
        public let suffix: String

        public init(prefix: String, suffix: String) {
            self.prefix = prefix
            self.suffix = suffix
        }

        /// The message for `number`.
        public func render(_ number: Int64) -> String { prefix + String(number) + suffix }
    }

    /// `changed(id, version: <number>)`, sent by `origin` inside its write.
    @_spi(Backend)
    public static func changed(_ id: SessionID, origin: String) -> Template {
        Template(prefix: "c|\(origin)|-|", suffix: "|" + id.rawValue)
    }

    /// `eventAppended(id, stream, eventID: <number>)`, sent by `origin` inside its write.
    @_spi(Backend)
    public static func eventAppended(_ id: SessionID, stream: StreamID, origin: String) -> Template {
        Template(prefix: "e|\(origin)|-|", suffix: "|" + streamAndSession(stream, id))
    }

    /// The start of a transactional `deleted` message from `origin`, for a statement that
    /// deletes rows and appends each row's session id.
    @_spi(Backend)
    public static func deletedPrefix(origin: String) -> String { "d|\(origin)|-|" }

    /// A transactional message whose text is complete before the write runs.
    @_spi(Backend)
    public static func transactional(_ change: SessionChange, origin: String) -> String {
        encode(ChangeMessage(origin: origin, delivery: .transactional, change: change))
    }
}
