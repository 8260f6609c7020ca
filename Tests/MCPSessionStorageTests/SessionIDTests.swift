import Foundation
import MCPSessionStorage
import Testing

@Suite("Session ids")
struct SessionIDTests {
    @Test("generated ids are UUID v7, distinct and ordered by time")
    func generated() async throws {
        let ids = (0..<1000).map { _ in SessionID.generate() }
        #expect(Set(ids).count == 1000)
        for id in ids {
            let text = id.rawValue
            #expect(text.count == 36)
            #expect(Array(text)[14] == "7")
            #expect("89ab".contains(Array(text)[19]))
            #expect(UUID(uuidString: text) != nil)
        }
        let early = SessionID.generate()
        try await Task.sleep(for: .milliseconds(2))
        let late = SessionID.generate()
        #expect(early < late)
    }

    @Test("a session id round-trips through Codable and rejects bad text when decoded")
    func codable() throws {
        let id = SessionID.generate()
        let data = try JSONEncoder().encode(id)
        #expect(try JSONDecoder().decode(SessionID.self, from: data) == id)
        #expect(throws: (any Error).self) { try JSONDecoder().decode(SessionID.self, from: Data(#""a b""#.utf8)) }
    }
}
