/// What one write did to a session, as the other instances need to hear it: enough to drop
/// what they cached (or to wake a stream they hold open), never the data itself.
public enum SessionChange: Sendable, Hashable {
    /// The session was written; its stored version is now `version`.
    case changed(SessionID, version: Int64)
    /// A write whose outcome is unknown (it failed as `unavailable` but may have committed):
    /// whatever version a receiver holds may be stale.
    case mayHaveChanged(SessionID)
    /// The session was deleted or expired.
    case deleted(SessionID)
    /// An event was appended to `stream`.
    case eventAppended(SessionID, stream: StreamID, eventID: Int64)
    /// Events were deleted by ``SessionStorage/deleteEvents(in:before:)``.
    case eventsDeleted(SessionID)

    /// The session the change is about.
    public var sessionID: SessionID {
        switch self {
        case .changed(let id, _), .mayHaveChanged(let id), .deleted(let id), .eventAppended(let id, _, _), .eventsDeleted(let id): id
        }
    }
}

extension SessionChange {
    /// What receivers need of `changes`, for a bus that sends them together. Per session:
    /// `changed` messages become one with the highest version, or one `mayHaveChanged` if there
    /// is one; a stream's `eventAppended` messages become one with the highest event id; each
    /// stands where the last of its kind was. Receivers drop what is older than such a message,
    /// so it says all the others did. A session with a deletion among `changes` keeps every
    /// change, in order.
    public static func merging(_ changes: [SessionChange]) -> [SessionChange] {
        var deleted: Set<SessionID> = []
        for change in changes {
            switch change {
            case .deleted(let id), .eventsDeleted(let id): deleted.insert(id)
            case .changed, .mayHaveChanged, .eventAppended: break
            }
        }
        // Per session, the strongest write message: nil means `mayHaveChanged`.
        var versions: [SessionID: Int64?] = [:]
        var eventIDs: [EventKey: Int64] = [:]
        for change in changes where !deleted.contains(change.sessionID) {
            switch change {
            case .changed(let id, let version):
                if let held = versions[id] { versions[id] = held.map { max($0, version) } } else { versions[id] = version }
            case .mayHaveChanged(let id):
                versions[id] = .some(nil)
            case .eventAppended(let id, let stream, let eventID):
                let key = EventKey(id: id, stream: stream)
                eventIDs[key] = max(eventIDs[key, default: eventID], eventID)
            case .deleted, .eventsDeleted: break
            }
        }
        // Walking back, the first of each kept is the last of its kind.
        var merged: [SessionChange] = []
        for change in changes.reversed() {
            switch change {
            case .changed(let id, _) where !deleted.contains(id), .mayHaveChanged(let id) where !deleted.contains(id):
                if let version = versions.removeValue(forKey: id) {
                    merged.append(version.map { .changed(id, version: $0) } ?? .mayHaveChanged(id))
                }
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
