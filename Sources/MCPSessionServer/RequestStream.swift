import MCPSessionStorage

/// The SSE answer to one POST on the instance that runs it: every message is appended to the
/// request's stream in storage and then handed, already stored, to the connection's writer.
///
/// The writer does not read its own request's events back from storage: on this instance the
/// running call is the only writer of the stream (its id is the request id), so what it stored
/// is exactly what the stream holds. A stream resumed elsewhere reads storage instead.
final class RequestStream: Sendable {
    enum Item: Sendable {
        /// A stored event, to write with its id.
        case stored(SSEEvent)
        /// An error that could not be stored (storage is down), to write without an id.
        case unstored(JSONValue)
    }

    let items: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let server: MCPServer
    private let session: SessionID
    private let stream: StreamID

    init(server: MCPServer, session: SessionID, stream: StreamID) {
        (items, continuation) = AsyncStream.makeStream(of: Item.self)
        self.server = server
        self.session = session
        self.stream = stream
    }

    /// Stores a notification and hands it to the writer.
    func send(_ message: JSONValue) async throws(SessionStorageError) {
        continuation.yield(.stored(try await server.append(message, to: stream, in: session)))
    }

    /// Stores the response and ends the stream; if storing fails, the writer gets the error.
    /// `nil`: another instance answered the call (its instance was judged stopped); the stream
    /// ends without an answer, which the client finds when it resumes.
    func finish(_ response: JSONValue?, requestID: JSONValue) async {
        guard let response else {
            continuation.finish()
            return
        }
        do {
            continuation.yield(.stored(try await server.append(response, to: stream, in: session)))
        } catch {
            server.logger.warning("could not store a response", metadata: ["session": "\(session)", "error": "\(error)"])
            continuation.yield(.unstored(OutgoingMessage.error(id: requestID, MCPServer.rpcError(error))))
        }
        continuation.finish()
    }
}
