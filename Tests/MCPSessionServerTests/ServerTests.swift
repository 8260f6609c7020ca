import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MCPSessionStorage
import ServiceLifecycle
import Testing

@testable import MCPSessionServer

/// A server over `storage` with the demo tools, as a Hummingbird application.
func makeApp(_ server: MCPServer) -> some ApplicationProtocol {
    server.register(DemoTools.all)
    let router = Router()
    server.addRoutes(to: router)
    return Application(router: router)
}

extension HTTPField.Name {
    static let sessionID = HTTPField.Name("Mcp-Session-Id")!
    static let protocolVersion = HTTPField.Name("MCP-Protocol-Version")!
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}

let jsonOnly: HTTPFields = [.contentType: "application/json", .accept: "application/json"]
let sse: HTTPFields = [.contentType: "application/json", .accept: "application/json, text/event-stream"]

func initialize(version: String = "2025-11-25") -> ByteBuffer {
    ByteBuffer(
        string:
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"\#(version)","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
    )
}

func call(_ tool: String, _ arguments: String, id: Int = 2) -> ByteBuffer {
    ByteBuffer(string: #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"\#(tool)","arguments":\#(arguments)}}"#)
}

func json(_ response: TestResponse) throws -> JSONValue {
    try JSONValue.decode(Data(response.body.readableBytesView))
}

extension TestClientProtocol {
    /// Initializes a session (JSON answer) and returns its id.
    func newSession() async throws -> String {
        try await execute(uri: "/mcp", method: .post, headers: jsonOnly, body: initialize()) { response in
            #expect(response.status == .ok)
            return try #require(response.headers[.sessionID])
        }
    }

    func post(_ body: ByteBuffer, session: String?, headers: HTTPFields = jsonOnly) async throws -> TestResponse {
        var headers = headers
        if let session { headers[.sessionID] = session }
        return try await execute(uri: "/mcp", method: .post, headers: headers, body: body)
    }
}

@Suite("The MCP server's HTTP contract")
struct ServerProtocolTests {
    let storage = InMemorySessionStorage()

    @Test("initialize stores the session with everything later requests need")
    func initializeStores() async throws {
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let session = try await client.newSession()
            let stored = try #require(try await storage.session(SessionID(validating: session)))
            #expect(stored.protocolVersion == "2025-11-25")
            #expect(stored.clientInfo == ["name": "t", "version": "1"])
            #expect(stored.serverCapabilities?[member: "tools"] != nil)
            // The answer itself was stored as an event before it was sent.
            let events = try await storage.recentEvents(in: stored.id, limit: 10)
            #expect(events.map { $0.data?[member: "result"]?[member: "protocolVersion"] } == ["2025-11-25"])
        }
    }

    @Test("a version the server does not know is answered with the newest it supports")
    func negotiation() async throws {
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let answer = try await client.post(initialize(version: "2030-01-01"), session: nil)
            #expect(try json(answer)[member: "result"]?[member: "protocolVersion"] == "2025-11-25")
            let older = try await client.post(initialize(version: "2025-03-26"), session: nil)
            #expect(try json(older)[member: "result"]?[member: "protocolVersion"] == "2025-03-26")
        }
    }

    @Test("any instance serves any session: the second server has never seen it")
    func anyInstance() async throws {
        let sessionID = try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let session = try await client.newSession()
            let set = try await client.post(call("state_set", #"{"key":"k","value":[1,"two"]}"#), session: session)
            #expect(try json(set)[member: "result"]?[member: "content"] == [["type": "text", "text": "ok"]])
            return session
        }
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let get = try await client.post(call("state_get", #"{"key":"k"}"#), session: sessionID)
            #expect(try json(get)[member: "result"]?[member: "content"] == [["type": "text", "text": #"[1,"two"]"#]])
        }
    }

    @Test("an SSE answer starts with a priming event and retry; every other frame is a stored event")
    func sseFraming() async throws {
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let session = try await client.newSession()
            let id = try SessionID(validating: session)
            let response = try await client.post(call("ticker", #"{"count":2,"interval_ms":0}"#), session: session, headers: sse)
            #expect(response.headers[.contentType] == "text/event-stream")
            let frames = String(buffer: response.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(frames.count == 4)
            // The priming event names the request's stream from its start, and is not stored.
            let priming = EventCursor(eventID: 0, session: id, stream: try StreamID.request(2)).text
            #expect(frames.first == "id: \(priming)\nretry: 1000\ndata: ")
            #expect(frames[1].contains(#""data":"tick 0""#) && frames[2].contains(#""data":"tick 1""#))
            #expect(frames[3].contains(#""text":"done""#))
            let stored = try await storage.recentEvents(in: id, limit: 100).filter { $0.stream.rawValue == "2" }
            #expect(
                stored.map { EventCursor(eventID: $0.id, session: id).text }
                    == frames.dropFirst().map { String($0.split(separator: "\n")[0].dropFirst(4)) })
        }
    }

    @Test("event ids parse back: stored ones, priming ones with their stream, nothing else")
    func cursors() throws {
        let session = SessionID.generate()
        for cursor in [EventCursor(eventID: 7, session: session), EventCursor(eventID: 0, session: session, stream: try StreamID.request("a-b|c"))] {
            #expect(EventCursor(cursor.text) == cursor)
            #expect(EventCursor(cursor.text)?.belongs(to: session) == true)
            #expect(EventCursor(cursor.text)?.belongs(to: .generate()) == false)
        }
        for bad in [
            "", "12", "0-0000000000000000", "x-0000000000000000", "1-00000000000000zz", "1-0000000000000000-0", "1-0000000000000000-zz",
            "1-0000000000000000-0a",
        ] {
            #expect(EventCursor(bad) == nil, "\(bad)")
        }
    }

    @Test("refusals: status codes and JSON-RPC errors, never a 5xx")
    func refusals() async throws {
        var configuration = MCPServer.Configuration()
        configuration.maxBodyBytes = 1024
        try await makeApp(MCPServer(storage: storage, configuration: configuration)).test(.router) { client in
            let session = try await client.newSession()
            func expect(
                _ body: ByteBuffer, session: String? = session, headers: HTTPFields = jsonOnly, _ status: HTTPResponse.Status, code: Int64? = nil,
                sourceLocation: SourceLocation = #_sourceLocation
            ) async throws {
                let response = try await client.post(body, session: session, headers: headers)
                #expect(response.status == status, sourceLocation: sourceLocation)
                if let code {
                    #expect(try json(response)[member: "error"]?[member: "code"] == .int(code), sourceLocation: sourceLocation)
                }
            }
            let get = call("state_get", #"{"key":"k"}"#)
            try await expect(get, session: nil, .badRequest, code: -32600)
            try await expect(get, session: "no-such-session", .notFound)
            try await expect(get, session: "bad\u{7F}id", .notFound)
            try await expect(
                get, headers: [.contentType: "application/json", .accept: "application/json", .protocolVersion: "2024-01-01"], .badRequest)
            try await expect(get, headers: [.contentType: "text/plain", .accept: "application/json"], .unsupportedMediaType)
            try await expect(get, headers: [.contentType: "application/json", .accept: "text/html"], .notAcceptable)
            try await expect(get, headers: [.contentType: "application/json", .origin: "http://evil.example"], .forbidden)
            try await expect(ByteBuffer(string: String(repeating: " ", count: 2048)), .contentTooLarge)
            try await expect(ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"#), .badRequest, code: -32700)
            try await expect(ByteBuffer(string: #"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), .badRequest, code: -32600)
            try await expect(ByteBuffer(string: #"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), .badRequest, code: -32600)
            try await expect(ByteBuffer(string: #"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#), .badRequest, code: -32600)
            try await expect(ByteBuffer(string: #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), .accepted)
            try await expect(ByteBuffer(string: #"{"jsonrpc":"2.0","id":9,"method":"no/such"}"#), .ok, code: -32601)
            try await expect(call("no_such_tool", "{}"), .ok, code: -32602)
            try await expect(call("ticker", #"{"count":-1,"interval_ms":0}"#), .ok, code: -32602)
            try await expect(call("state_set", #"{"key":"k"}"#), .ok, code: -32602)
            // Localhost origins are fine.
            try await expect(get, headers: [.contentType: "application/json", .accept: "application/json", .origin: "http://localhost:3000"], .ok)
        }
    }

    @Test("a value over the storage's limit is the tool's error, and nothing is stored")
    func oversizedValue() async throws {
        var policy = SessionPolicy()
        policy.maxStateValueBytes = 100
        let small = InMemorySessionStorage(configuration: .init(policy: policy))
        try await makeApp(MCPServer(storage: small)).test(.router) { client in
            let session = try await client.newSession()
            let big = "\"" + String(repeating: "x", count: 900) + "\""
            let response = try await client.post(call("state_set", #"{"key":"k","value":\#(big)}"#), session: session)
            let result = try json(response)[member: "result"]
            #expect(result?[member: "isError"] == true)
            #expect(try await small.stateValue(forKey: "k", in: SessionID(validating: session)) == nil)
        }
    }

    @Test("the standalone GET stream delivers server-initiated notifications")
    func standaloneStream() async throws {
        let server = MCPServer(storage: storage)
        try await makeApp(server).test(.router) { client in
            let session = try await client.newSession()
            let id = try SessionID(validating: session)
            let stream = Task { try await client.execute(uri: "/mcp", method: .get, headers: [.sessionID: session, .accept: "text/event-stream"]) }
            while !server.hub.isFollowing(id) { try await Task.sleep(for: .milliseconds(2)) }
            try await server.sendNotification("notifications/tools/list_changed", to: id)
            // Closing the session's streams (what its deletion does) makes the stream read once
            // more and end; the session still exists, so that read finds the notification.
            server.hub.close(id)
            let body = String(buffer: try await stream.value.body)
            #expect(body.contains(#""method":"notifications/tools/list_changed""#))
        }
    }

    @Test("DELETE ends the session; later requests get 404")
    func deleteSession() async throws {
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let session = try await client.newSession()
            try await client.execute(uri: "/mcp", method: .delete, headers: [.sessionID: session]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/mcp", method: .delete, headers: [.sessionID: session]) { #expect($0.status == .notFound) }
            #expect(try await client.post(call("state_get", #"{"key":"k"}"#), session: session).status == .notFound)
            try await client.execute(uri: "/mcp", method: .delete) { #expect($0.status == .badRequest) }
        }
    }

    @Test("Last-Event-ID: one from another session or a made-up one replays nothing")
    func foreignCursor() async throws {
        try await makeApp(MCPServer(storage: storage)).test(.router) { client in
            let first = try await client.newSession()
            let second = try await client.newSession()
            let stream = String(buffer: try await client.post(call("state_get", #"{"key":"k"}"#), session: first, headers: sse).body)
            let cursor = try #require(stream.split(separator: "\n").first { $0.hasPrefix("id: ") }?.dropFirst(4))
            for (session, lastEventID) in [(second, String(cursor)), (first, "12"), (first, "not-a-cursor")] {
                try await client.execute(
                    uri: "/mcp", method: .get, headers: [.sessionID: session, .accept: "text/event-stream", .lastEventID: lastEventID]
                ) { response in
                    #expect(response.status == .badRequest)
                    #expect(!String(buffer: response.body).contains("tick"))
                }
            }
        }
    }
}

@Suite("Two servers over one storage, with a bus")
struct ServerClusterTests {
    @Test("a stream resumed on another instance follows the tool still running on the first, woken by the bus", .timeLimit(.minutes(1)))
    func resumeFollowsThroughBus() async throws {
        let durable = InMemorySessionStorage()
        let hub = InProcessChangeBus.Hub()
        var configuration = MCPServer.Configuration()
        configuration.pollInterval = .seconds(3600)  // only the bus can wake the resumed stream in time
        configuration.keepAliveInterval = .seconds(3600)
        func instance(_ name: String) -> (MCPServer, [any Service]) {
            let bus = InProcessChangeBus(hub: hub, instanceID: name)
            let server = MCPServer(stack: SessionStack(durable: durable, bus: bus), configuration: configuration)
            return (server, [server])
        }
        let (a, servicesA) = instance("a")
        let (b, servicesB) = instance("b")
        try await withThrowingTaskGroup { group in
            for service in servicesA + servicesB { group.addTask { try await service.run() } }
            try await makeApp(a).test(.router) { onA in
                try await makeApp(b).test(.router) { onB in
                    let session = try await onA.newSession()
                    let id = try SessionID(validating: session)
                    let ticker = Task { try await onA.post(call("ticker", #"{"count":5,"interval_ms":100}"#), session: session, headers: sse) }
                    // Once the first tick is stored the call is running on A; B resumes the
                    // stream from its priming position (its start), as a client that lost it would.
                    while try await durable.recentEvents(in: id, limit: 100).contains(where: { $0.stream.rawValue == "2" }) == false {
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    let cursor = EventCursor(eventID: 0, session: id, stream: try StreamID.request(2)).text
                    let resumed = try await onB.execute(
                        uri: "/mcp", method: .get, headers: [.sessionID: session, .accept: "text/event-stream", .lastEventID: cursor])
                    let text = String(buffer: resumed.body)
                    let ticks = text.split(separator: "\n").filter { $0.hasPrefix("data: {") }
                    #expect(ticks.count == 6)
                    for tick in 0..<5 { #expect(text.contains(#""data":"tick \#(tick)""#)) }
                    #expect(ticks.last?.contains(#""text":"done""#) == true)
                    // The first instance's own stream got the same events.
                    #expect(String(buffer: try await ticker.value.body).contains(#""text":"done""#))
                }
            }
            group.cancelAll()
        }
    }
}
