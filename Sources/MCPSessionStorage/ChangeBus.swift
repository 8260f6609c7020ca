/// A change one instance made, for the others to drop what they cached.
public enum SessionChange: Sendable, Hashable {
    /// The session was written; its stored version is now `version`.
    case sessionChanged(SessionID, version: Int64)
    /// The session was deleted or expired.
    case sessionDeleted(SessionID)
    /// An event was appended (so an instance holding the client's stream can deliver it).
    case eventAppended(SessionID, stream: StreamID, eventID: Int64)
    /// Events were deleted by `deleteEvents(in:before:)`.
    case eventsDeleted(SessionID)

    /// The session the change is about.
    public var sessionID: SessionID {
        switch self {
        case .sessionChanged(let id, _), .sessionDeleted(let id), .eventAppended(let id, _, _), .eventsDeleted(let id): id
        }
    }
}

extension SessionChange {
    /// What receivers need of `changes`, for a bus that sends them together: a session's
    /// `sessionChanged` messages become one with the highest version, and a stream's
    /// `eventAppended` messages one with the highest event id, each where the last of them
    /// was. Receivers drop what is older than such a message, so the highest says all the
    /// others did. A session with a deletion among `changes` keeps every change, in order.
    public static func merging(_ changes: [SessionChange]) -> [SessionChange] {
        var deleted: Set<SessionID> = []
        for change in changes {
            switch change {
            case .sessionDeleted(let id), .eventsDeleted(let id): deleted.insert(id)
            case .sessionChanged, .eventAppended: break
            }
        }
        var versions: [SessionID: Int64] = [:]
        var eventIDs: [EventKey: Int64] = [:]
        for change in changes where !deleted.contains(change.sessionID) {
            switch change {
            case .sessionChanged(let id, let version): versions[id] = max(versions[id, default: version], version)
            case .eventAppended(let id, let stream, let eventID):
                let key = EventKey(id: id, stream: stream)
                eventIDs[key] = max(eventIDs[key, default: eventID], eventID)
            case .sessionDeleted, .eventsDeleted: break
            }
        }
        // Walking back, the first of each kept is the last of its kind.
        var merged: [SessionChange] = []
        for change in changes.reversed() {
            switch change {
            case .sessionChanged(let id, _) where !deleted.contains(id):
                if let version = versions.removeValue(forKey: id) { merged.append(.sessionChanged(id, version: version)) }
            case .eventAppended(let id, let stream, _) where !deleted.contains(id):
                if let eventID = eventIDs.removeValue(forKey: EventKey(id: id, stream: stream)) {
                    merged.append(.eventAppended(id, stream: stream, eventID: eventID))
                }
            default: merged.append(change)
            }
        }
        return merged.reversed()
    }

    private struct EventKey: Hashable {
        var id: SessionID
        var stream: StreamID
    }
}

/// A change as it travels: who sent it, and its place in that sender's sequence.
public struct ChangeMessage: Sendable, Hashable {
    /// The instance that made the change.
    public var origin: String
    /// 1, 2, 3… per origin; a hole means messages were lost. 0 when the transport guarantees
    /// delivery while connected and commit order differs from numbering (NOTIFY inside writes).
    public var sequence: UInt64
    public var change: SessionChange

    public init(origin: String, sequence: UInt64, change: SessionChange) {
        self.origin = origin
        self.sequence = sequence
        self.change = change
    }
}

/// What a bus reports to its instance.
public enum BusSignal: Sendable, Hashable {
    /// The bus is (again) listening. Anything cached before this may have missed messages.
    case connected
    /// The bus lost its connection; messages may be lost until `connected`.
    case disconnected
    /// Another instance's change.
    case message(ChangeMessage)
}

/// Carries invalidations between the instances of a cluster.
///
/// Implementations: ``InProcessChangeBus`` (tests, one process), `PostgresChangeBus`
/// (LISTEN/NOTIFY). ``TieredSessionStorage`` publishes every committed write and consumes
/// ``signals()``; it ignores its own messages, and flushes its front on `connected`,
/// `disconnected` and on a gap in any origin's sequence.
public protocol ChangeBus: Sendable {
    /// This instance's id, stamped on what it publishes.
    var instanceID: String { get }

    /// Sends a change this instance committed. Never throws: a lost message is repaired by the
    /// receivers (sequence gap → flush) and bounded by the front's maximum age.
    func publish(_ change: SessionChange) async

    /// Whether the durable tier already emits every change atomically with its write (for
    /// PostgreSQL, a NOTIFY inside the write's statement), so `publish` need not be called.
    var changesEmittedByDurableWrites: Bool { get }

    /// What the bus hears. Call once; the stream ends when the bus stops.
    func signals() -> AsyncStream<BusSignal>
}

extension ChangeBus {
    public var changesEmittedByDurableWrites: Bool { false }
}

/// The text form of a message, for buses that carry strings (NOTIFY payloads, pub/sub).
///
/// `c|origin|sequence|version|id`, `d|origin|sequence|id`, `t|origin|sequence|id`,
/// `e|origin|sequence|eventID|streamBytes|stream id`: the session id comes last because it may
/// hold `|`; the stream is length-prefixed for the same reason. At most about 450 bytes, far
/// below PostgreSQL's 8000-byte NOTIFY limit; several messages join with newlines, which
/// neither ids nor stream ids may contain.
public enum ChangeMessageText {
    public static func encode(_ message: ChangeMessage) -> String {
        let head = "\(message.origin)|\(message.sequence)"
        switch message.change {
        case .sessionChanged(let id, let version): return "c|\(head)|\(version)|\(id.rawValue)"
        case .sessionDeleted(let id): return "d|\(head)|\(id.rawValue)"
        case .eventsDeleted(let id): return "t|\(head)|\(id.rawValue)"
        case .eventAppended(let id, let stream, let eventID):
            return "e|\(head)|\(eventID)|\(stream.rawValue.utf8.count)|\(stream.rawValue)\(id.rawValue)"
        }
    }

    /// Parses one message; `nil` for text that is not one (logged and ignored by buses).
    public static func decode(_ text: Substring) -> ChangeMessage? {
        let parts = text.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, let sequence = UInt64(parts[2]) else { return nil }
        let origin = String(parts[1])
        let rest = parts[3]
        func id(_ text: Substring) -> SessionID? { try? SessionID(validating: String(text)) }
        switch parts[0] {
        case "d": return id(rest).map { ChangeMessage(origin: origin, sequence: sequence, change: .sessionDeleted($0)) }
        case "t": return id(rest).map { ChangeMessage(origin: origin, sequence: sequence, change: .eventsDeleted($0)) }
        case "c":
            let fields = rest.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
            guard fields.count == 2, let version = Int64(fields[0]), let id = id(fields[1]) else { return nil }
            return ChangeMessage(origin: origin, sequence: sequence, change: .sessionChanged(id, version: version))
        case "e":
            let fields = rest.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let eventID = Int64(fields[0]), let length = Int(fields[1]) else { return nil }
            let tail = fields[2].utf8
            guard length >= 0, length <= tail.count else { return nil }
            let split = tail.index(tail.startIndex, offsetBy: length)
            guard let streamText = String(tail[..<split]), let idText = String(tail[split...]),
                let stream = try? StreamID(validating: streamText), let id = id(Substring(idText))
            else { return nil }
            return ChangeMessage(origin: origin, sequence: sequence, change: .eventAppended(id, stream: stream, eventID: eventID))
        default: return nil
        }
    }
}
