// The floor of the server load benchmark: Hummingbird on the same loopback port answering
// every POST with the bytes mcp-session-server sends for `state_get` (an SSE event with an id
// and the JSON-RPC response), doing nothing else. The gap to it is what MCP handling and
// session storage cost.
import Hummingbird

let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1])! : 8090
let answer = ByteBuffer(
    string: """
        id: 3-915d9729e84f587c
        event: message
        data: {"id":7,"jsonrpc":"2.0","result":{"content":[{"text":"{\\"hello\\":\\"world\\"}","type":"text"}],"isError":false}}


        """)
let router = Router()
router.post("/mcp") { request, _ -> Response in
    _ = try await request.body.collect(upTo: 4 << 20)
    return Response(
        status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache, no-transform"], body: ResponseBody(byteBuffer: answer))
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
