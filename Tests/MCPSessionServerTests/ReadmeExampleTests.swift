import Foundation
import Hummingbird
import HummingbirdTesting
import MCPSessionServer
import MCPSessionStorage
import MCPSessionStorageSQLite
import Testing

/// The README's "Your own server" example, compiled and run (without the service group).
@Suite("README example")
struct ReadmeExampleTests {
    struct Greet: Decodable, Sendable { var name: String }

    @Test("the greet tool counts greetings in the session's state")
    func greet() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID()).db").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // From the README:
        let storage = try SQLiteSessionStorage(configuration: .init(path: path))
        let server = MCPServer(storage: storage)
        server.register(
            Tool(name: "greet", description: "Greets someone.", inputSchema: ["type": "object", "properties": ["name": ["type": "string"]]]) {
                (input: Greet, context) in
                let count = try await context.state("greetings")?.intValue ?? 0
                try await context.setState(.int(count + 1), forKey: "greetings")  // per-session state
                try await context.log(.info, .string("greeting \(input.name)"))  // a notification on the call's stream
                return .text("Hello, \(input.name)!")
            })
        let router = Router()
        server.addRoutes(to: router)
        // (The README runs `Application(router:)` and `server` in a ServiceGroup.)
        try await Application(router: router).test(.router) { client in
            let session = try await client.newSession()
            for expected in 1...2 {
                let answer = try json(try await client.post(call("greet", #"{"name":"Ada"}"#), session: session))
                #expect(answer[member: "result"]?[member: "content"] == [["type": "text", "text": "Hello, Ada!"]])
                #expect(try await storage.stateValue(forKey: "greetings", in: SessionID(validating: session)) == .int(Int64(expected)))
            }
        }
    }
}
