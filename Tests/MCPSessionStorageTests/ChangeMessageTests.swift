import Foundation
import MCPSessionStorage
import Testing

@Suite("Change messages as text")
struct ChangeMessageTests {
    @Test("every kind of change round-trips, even with '|' in ids and streams")
    func roundTrip() throws {
        let id = try SessionID(validating: "a|b|c")
        let stream = try StreamID(validating: "\"x|y\"")
        let changes: [SessionChange] = [
            .changed(id, version: 42), .deleted(id), .eventsDeleted(id), .mayHaveChanged(id),
            .eventAppended(id, stream: stream, eventID: 7), .eventAppended(.generate(), stream: .standalone, eventID: Int64.max),
        ]
        for (index, change) in changes.enumerated() {
            let message = ChangeMessage(
                origin: "instance-1", delivery: index % 2 == 0 ? .sequenced(UInt64(index + 1)) : .transactional, change: change)
            let text = ChangeMessageText.encode(message)
            #expect(!text.contains("\n"))
            #expect(ChangeMessageText.decode(Substring(text)) == message)
        }
    }

    @Test(
        "text that is not a message decodes to nil",
        arguments: [
            "", "x|o|1|id", "c|o|notanumber|1|id", "c|o||1|id", "c|o|+|1|id", "c|o|1|v|id", "c|o|1|5|", "d|o|1|has space",
            "e|o|1|7|99|short", "e|o|1|7|-1|x", "e|o|1|x|1|aid",
        ])
    func malformed(_ text: String) {
        #expect(ChangeMessageText.decode(Substring(text)) == nil)
    }

    @Test("merging keeps a session's highest version and a stream's highest event, where the last of each was")
    func merging() throws {
        let (a, b) = (try SessionID(validating: "a"), try SessionID(validating: "b"))
        let (one, two) = (try StreamID.request(1), try StreamID.request(2))
        let merged = SessionChange.merging([
            .changed(a, version: 3), .eventAppended(a, stream: one, eventID: 10), .changed(b, version: 1),
            .changed(a, version: 5), .eventAppended(a, stream: two, eventID: 11), .changed(a, version: 4),
            .eventAppended(a, stream: one, eventID: 12),
        ])
        #expect(
            merged == [
                .changed(b, version: 1), .eventAppended(a, stream: two, eventID: 11), .changed(a, version: 5),
                .eventAppended(a, stream: one, eventID: 12),
            ])
    }

    @Test("merging leaves every change of a session that was deleted among them, in order")
    func mergingAroundDeletes() throws {
        let (a, b) = (try SessionID(validating: "a"), try SessionID(validating: "b"))
        let changes: [SessionChange] = [
            .changed(a, version: 7), .deleted(a), .changed(a, version: 1), .changed(b, version: 2),
            .eventAppended(b, stream: .standalone, eventID: 3), .eventsDeleted(b), .eventAppended(b, stream: .standalone, eventID: 1),
        ]
        #expect(SessionChange.merging(changes) == changes)
        #expect(SessionChange.merging([]) == [])
    }

    @Test("stream ids may not hold control characters, so messages can join with newlines")
    func streamIDs() {
        #expect(throws: SessionStorageError.self) { try StreamID(validating: "a\nb") }
        #expect(throws: SessionStorageError.self) { try StreamID(validating: "tab\there") }
    }
}
