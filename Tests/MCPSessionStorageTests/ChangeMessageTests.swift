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
            .sessionChanged(id, version: 42), .sessionDeleted(id), .eventsDeleted(id),
            .eventAppended(id, stream: stream, eventID: 7), .eventAppended(.generate(), stream: .standalone, eventID: Int64.max),
        ]
        for (index, change) in changes.enumerated() {
            let message = ChangeMessage(origin: "instance-1", sequence: UInt64(index + 1), change: change)
            let text = ChangeMessageText.encode(message)
            #expect(!text.contains("\n"))
            #expect(ChangeMessageText.decode(Substring(text)) == message)
        }
    }

    @Test("text that is not a message decodes to nil", arguments: [
        "", "x|o|1|id", "c|o|notanumber|1|id", "c|o|1|v|id", "c|o|1|5|", "d|o|1|has space",
        "e|o|1|7|99|short", "e|o|1|7|-1|x", "e|o|1|x|1|aid",
    ])
    func malformed(_ text: String) {
        #expect(ChangeMessageText.decode(Substring(text)) == nil)
    }

    @Test("stream ids may not hold control characters, so messages can join with newlines")
    func streamIDs() {
        #expect(throws: SessionStorageError.self) { try StreamID(validating: "a\nb") }
        #expect(throws: SessionStorageError.self) { try StreamID(validating: "tab\there") }
    }
}
