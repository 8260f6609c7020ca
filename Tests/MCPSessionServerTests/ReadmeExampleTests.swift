import Foundation
import Hummingbird
import HummingbirdTesting
import MCPSessionServer
import MCPSessionStorage
import MCPSessionStorageSQLite
import Testing

/// The examples the README and the guides show: each shown block is the example file itself
/// (which the build compiles and the end-to-end tests run), and the server example's tool works.
@Suite("README example")
struct ReadmeExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every code block preceded by `<!-- example: PATH -->` in the README and the guides,
    /// with its path.
    static func shownExamples() throws -> [(document: String, path: String, code: String)] {
        let documents =
            ["README.md"]
            + (try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Docs").path))
            .filter { $0.hasSuffix(".md") }.map { "Docs/" + $0 }
        var examples: [(String, String, String)] = []
        for document in documents {
            let lines = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8).components(separatedBy: "\n")
            for (index, line) in lines.enumerated() where line.hasPrefix("<!-- example: ") {
                let path = String(line.dropFirst("<!-- example: ".count).dropLast(" -->".count))
                guard index + 1 < lines.count, lines[index + 1].hasPrefix("```") else { continue }
                let body = lines[(index + 2)...].prefix { !$0.hasPrefix("```") }
                examples.append((document, path, body.joined(separator: "\n") + "\n"))
            }
        }
        return examples
    }

    @Test("every example the documents show is, word for word, a file the build compiles")
    func shownExamplesAreTheFiles() throws {
        let examples = try Self.shownExamples()
        #expect(examples.contains { $0.path == "Examples/QuickStart/main.swift" })
        #expect(examples.contains { $0.path == "Examples/GreetServer/main.swift" })
        for example in examples {
            let file = try String(contentsOf: Self.root.appendingPathComponent(example.path), encoding: .utf8)
            #expect(example.code == file, "\(example.document) shows \(example.path) differently from the file")
        }
    }

    struct Greet: Decodable, Sendable { var name: String }

    @Test("the greet tool counts greetings in the session's state")
    func greet() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID()).db").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // As in Examples/GreetServer/main.swift:
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
        // (The example runs the stack's services, `Application(router:)` and `server` in a
        // ServiceGroup; the end-to-end tests run it as a process.)
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
