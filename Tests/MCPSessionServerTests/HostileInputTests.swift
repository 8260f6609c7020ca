import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MCPSessionStorage
import Testing

@testable import MCPSessionServer

/// What a hostile or careless client can send: every answer is a clean one, and nothing traps.
@Suite("Hostile input")
struct HostileInputTests {
    /// `initialize` with `id`, as the client would send it.
    static func initialize(id: JSONValue) throws -> ByteBuffer {
        let message: JSONValue = [
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": ["protocolVersion": "2025-11-25", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]],
        ]
        return ByteBuffer(bytes: try message.encoded())
    }

    /// The ids the JSON-RPC spec allows a request to carry (MCP: strings and integers), at the
    /// edges: control characters, DEL, quotes, the longest that fit a stream id and beyond.
    static let ids: [JSONValue] = [
        "a\u{7F}b", .string(String(repeating: "\u{7F}", count: 40)), "", "\u{0}", "tab\tnew\nline\u{1F}", #"quote " back \ slash"#,
        "日本語 🎉", "\u{2028}\u{85}", .string(String(repeating: "x", count: 254)), .string(String(repeating: "x", count: 255)),
        .string(String(repeating: "x", count: 10_000)), .int(.max), .int(.min), 0,
    ]

    @Test("any string or integer request id is answered with itself, or refused before a session exists", arguments: ids)
    func requestIDs(_ id: JSONValue) async throws {
        let storage = InMemorySessionStorage()
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let response = try await client.post(try Self.initialize(id: id), session: nil)
            let answer = try json(response)
            #expect(answer[member: "id"] == id)
            let sessions = try await storage.sessionCount()
            if let stream = try? StreamID.request(id) {
                #expect(response.status == .ok)
                #expect(answer[member: "result"]?[member: "protocolVersion"] == "2025-11-25")
                #expect(sessions == 1)
                // The stream id is JSON text for the same id: a resumed stream names its request.
                #expect(try JSONValue.decode(Data(stream.rawValue.utf8)) == id)
            } else {
                #expect(response.status == .badRequest)
                #expect(answer[member: "error"]?[member: "code"] == -32600)
                #expect(answer[member: "error"]?[member: "message"]?.stringValue?.contains("\(StreamID.maxLength)") == true)
                #expect(sessions == 0, "a refused initialize left a session behind")
            }
        }
    }

    @Test("a request id with DEL works for every request of a session, and its stream resumes")
    func deleteCharacterID() async throws {
        let storage = InMemorySessionStorage()
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let session = try await client.newSession()
            let id: JSONValue = "call\u{7F}1"
            let body = ByteBuffer(
                string: #"{"jsonrpc":"2.0","id":"call\u007f1","method":"tools/call","params":{"name":"state_get","arguments":{"key":"k"}}}"#)
            let answer = try json(try await client.post(body, session: session))
            #expect(answer[member: "id"] == id)
            #expect(answer[member: "result"]?[member: "content"] == [["type": "text", "text": "null"]])

            let stream = String(buffer: try await client.post(body, session: session, headers: sse).body)
            let cursor = try #require(stream.split(separator: "\n").first { $0.hasPrefix("id: ") }?.dropFirst(4))
            let parsed = try #require(EventCursor(String(cursor)))
            #expect(parsed.stream == (try StreamID.request(id)))
            let resumed = try await client.execute(
                uri: "/mcp", method: .get, headers: [.sessionID: session, .accept: "text/event-stream", .lastEventID: String(cursor)])
            #expect(resumed.status == .ok)
            #expect(String(buffer: resumed.body).contains(#""id":"call"#))
        }
    }

    @Test("the same request id with DEL raw or escaped names the same stream")
    func deleteCharacterStream() throws {
        let stream = try StreamID.request("a\u{7F}b")
        #expect(stream.rawValue == #""a\u007fb""#)
        #expect(try StreamID(validating: stream.rawValue) == stream)
        #expect(throws: SessionStorageError.self) { try StreamID.request(.string(String(repeating: "x", count: 255))) }
    }

    @Test("a state value that state_set stores, state_get returns; one it cannot return is refused up front with the limit")
    func stateValueReadsBack() async throws {
        // The largest value the default limits accept: its JSON text is 1,048,560 bytes.
        let text = String(repeating: "x", count: 1_048_558)
        for policy in [SessionPolicy(), SessionPolicy(maxEventBytes: 3 << 20)] {
            let storage = InMemorySessionStorage(configuration: .init(policy: policy))
            try await makeApp(MCPServer(storage: storage)).test(.router) { client in
                let session = try await client.newSession()
                let set = try json(try await client.post(call("state_set", #"{"key":"k","value":"\#(text)"}"#), session: session))
                let stored = try await storage.stateValue(forKey: "k", in: SessionID(validating: session))
                let get = try json(try await client.post(call("state_get", #"{"key":"k"}"#, id: 3), session: session))
                if set[member: "result"]?[member: "isError"] == false {
                    // Compared as Bools: a failure must not print a megabyte.
                    let storedBack = stored == .string(text)
                    let readBack = get[member: "result"]?[member: "content"] == [["type": "text", "text": .string(#""\#(text)""#)]]
                    #expect(storedBack)
                    #expect(readBack, "state_get answered \(String(describing: get[member: "error"]))")
                } else {
                    let message = set[member: "result"]?[member: "content"]?.arrayValue?.first?[member: "text"]?.stringValue ?? ""
                    #expect(message.contains("\(policy.maxEventBytes)"), "\(message)")
                    #expect(stored == nil)
                }
            }
        }
    }
}

extension JSONValue {
    fileprivate var arrayValue: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }
}
