import Foundation
import HTTPTypes
import Hummingbird
import MCPSessionStorage
import Metrics

extension HTTPField.Name {
    static let mcpSessionID = HTTPField.Name("Mcp-Session-Id")!
    static let mcpProtocolVersion = HTTPField.Name("MCP-Protocol-Version")!
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}

/// A request refused before it reached a JSON-RPC method: an HTTP status with a JSON-RPC error body.
struct HTTPFailure: Error {
    var status: HTTPResponse.Status
    var error: RPCError
    var id: JSONValue = .null
    var retryAfterSeconds: Int?
    /// Answered with `Connection: close`, and the connection is shut after the answer.
    var closesConnection = false

    static func badRequest(_ message: String, id: JSONValue = .null) -> HTTPFailure {
        HTTPFailure(status: .badRequest, error: .invalidRequest(message), id: id)
    }

    static let sessionNotFound = HTTPFailure(
        status: .notFound, error: .invalidRequest("session not found: unknown, expired or deleted; initialize a new one"))

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = "\(retryAfterSeconds)" }
        if closesConnection { headers[.connection] = "close" }
        let body = (try? OutgoingMessage.error(id: id, error).encoded()) ?? Data()
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// How the client wants a POST's answer.
enum Delivery {
    case sse, json
}

extension MCPServer {
    /// Adds `POST`, `GET` and `DELETE` on ``Configuration/path`` to `router`.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        let path = RouterPath(configuration.path)
        router.post(path) { request, _ in await self.respond("POST") { () throws(HTTPFailure) in try await self.post(request) } }
        router.get(path) { request, _ in await self.respond("GET") { () throws(HTTPFailure) in try await self.get(request) } }
        router.delete(path) { request, _ in await self.respond("DELETE") { () throws(HTTPFailure) in try await self.delete(request) } }
        addHealthRoutes(to: router)
    }

    /// The response, counted in `mcp_server_requests` by method and status.
    private func respond(_ method: String, _ handle: () async throws(HTTPFailure) -> Response) async -> Response {
        let response: Response
        do {
            response = try await handle()
        } catch {
            response = error.response
        }
        Counter(label: "mcp_server_requests", dimensions: [("method", method), ("status", String(response.status.code))]).increment()
        return response
    }

    // MARK: POST: one JSON-RPC message

    func post(_ request: Request) async throws(HTTPFailure) -> Response {
        try checkOrigin(request)
        guard let type = request.headers[.contentType], Self.mediaType(type) == "application/json" else {
            throw HTTPFailure(status: .unsupportedMediaType, error: .invalidRequest("Content-Type must be application/json"))
        }
        let delivery = try Self.delivery(accept: request.headers[.accept])
        let body = try await readBody(request)
        let value: JSONValue
        do {
            // Parsed in place: the body is not copied.
            value = try body.withUnsafeReadableBytes { raw in try JSONValue.decode(bytes: raw.bindMemory(to: UInt8.self)) }
        } catch {
            let message = (error as? SessionStorageError)?.message ?? "\(error)"
            throw HTTPFailure(status: .badRequest, error: .parseError("malformed JSON: \(message)"))
        }
        let message: IncomingMessage
        do {
            message = try IncomingMessage(value)
        } catch {
            throw HTTPFailure(status: .badRequest, error: error, id: IncomingMessage.id(in: value))
        }
        // A request's answer is stored on a stream named by its id: an id that cannot name one
        // is refused here, before anything (a session, an event) is written.
        var stream = StreamID.standalone
        if case .request(let id, let method, let params) = message {
            do {
                stream = try StreamID.request(id)
            } catch {
                throw HTTPFailure.badRequest(error.message, id: id)
            }
            if method == "initialize" {
                return try await initialize(id: id, params: params, stream: stream, delivery: delivery)
            }
        }
        let session = try await requireSession(request)
        switch message {
        case .request(let id, let method, let params):
            return try await reply(session: session.id, requestID: id, stream: stream, delivery: delivery) { send in
                await self.answer(method, id: id, params: params, session: session, send: send)
            }
        case .notification(let method, let params):
            do {
                try await notify(method, params: params, session: session)
            } catch {
                throw failure(error)
            }
            return Response(status: .accepted)
        case .response:
            return Response(status: .accepted)
        }
    }

    /// The whole body, up to ``Configuration/maxBodyBytes``: 413 past it (told by
    /// `Content-Length` before reading, or counted), 400 when it ends before its
    /// `Content-Length`. Both close the connection, whose framing can no longer be trusted.
    private func readBody(_ request: Request) async throws(HTTPFailure) -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        let tooLarge = HTTPFailure(
            status: .contentTooLarge, error: .invalidRequest("request body is larger than \(limit) bytes"), closesConnection: true)
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > limit { throw tooLarge }
        // A declared length is allocated once; chunks are copied in, so no chunk's own
        // (possibly larger) buffer outlives the request.
        var body = ByteBufferAllocator().buffer(capacity: declared ?? 0)
        do {
            for try await chunk in request.body {
                guard chunk.readableBytes <= limit - body.readableBytes else { throw tooLarge }
                body.writeImmutableBuffer(chunk)
            }
        } catch let failure as HTTPFailure {
            throw failure
        } catch {
            throw HTTPFailure(
                status: .badRequest, error: .invalidRequest("request body ended before its Content-Length, or its connection broke"),
                closesConnection: true)
        }
        return body
    }

    private func initialize(id: JSONValue, params: JSONValue?, stream: StreamID, delivery: Delivery) async throws(HTTPFailure) -> Response {
        let created: (SessionInfo, JSONValue)
        do {
            created = try await initialize(params: params)
        } catch let error as RPCError {
            throw HTTPFailure(status: .badRequest, error: error, id: id)
        } catch {
            throw failure(error, id: id)
        }
        let (session, result) = created
        var response = try await reply(session: session.id, requestID: id, stream: stream, delivery: delivery) { _ in
            OutgoingMessage.result(id: id, result)
        }
        response.headers[.mcpSessionID] = session.id.rawValue
        return response
    }

    /// Answers a request: `work` computes the answer in a task of its own (so it goes on if the
    /// client drops the stream), storing each message it sends through the given sender; the
    /// response is stored too, and everything is written only once stored.
    private func reply(
        session: SessionID, requestID: JSONValue, stream: StreamID, delivery: Delivery,
        _ work: @escaping @Sendable (_ send: @escaping MessageSender) async -> JSONValue
    ) async throws(HTTPFailure) -> Response {
        switch delivery {
        case .json:
            // Notifications are stored (a later GET can resume them) but not sent: a JSON
            // answer has room for the response alone.
            let message = await work { [self] message throws(SessionStorageError) in try await append(message, to: stream, in: session) }
            do {
                try await append(message, to: stream, in: session)
            } catch {
                throw failure(error, id: requestID)
            }
            let body = (try? message.encoded()) ?? Data()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        case .sse:
            let answer = RequestStream(server: self, session: session, stream: stream)
            calls.start(
                session: session, stream: stream, requestID: requestID,
                work: { await work { message throws(SessionStorageError) in try await answer.send(message) } },
                finish: { message in await answer.finish(message, requestID: requestID) })
            // A request's stream is new to the session, so "after 0" is all of it.
            let priming = SSE.priming(EventCursor(eventID: 0, session: session, stream: stream), retry: configuration.retryInterval)
            return sseResponse { writer throws in
                try await writer.write(priming)
                for await item in answer.items {
                    switch item {
                    case .stored(let event):
                        try await writer.write(try SSE.frame(event, session: session))
                    case .unstored(let message):
                        try await writer.write(SSE.frame(unstored: message))
                    }
                }
            }
        }
    }

    // MARK: GET: the standalone stream, or a resumed one

    func get(_ request: Request) async throws(HTTPFailure) -> Response {
        try checkOrigin(request)
        guard let accept = request.headers[.accept], Self.accepts(accept, "text/event-stream") else {
            throw HTTPFailure(status: .notAcceptable, error: .invalidRequest("GET needs Accept: text/event-stream"))
        }
        let session = try await requireSession(request).id
        if let lastEventID = request.headers[.lastEventID] {
            guard let cursor = EventCursor(lastEventID), cursor.belongs(to: session) else {
                throw HTTPFailure.badRequest("Last-Event-ID \(lastEventID.prefix(64)) was not sent in this session")
            }
            let stream: StreamID
            if let named = cursor.stream {
                stream = named
            } else {
                let event: SSEEvent?
                do {
                    event = try await storage.event(cursor.eventID, in: session)
                } catch {
                    throw failure(error)
                }
                guard let event else { throw HTTPFailure.badRequest("event \(cursor.eventID) is no longer stored; the stream cannot be resumed") }
                stream = event.stream
            }
            let requestID = stream == .standalone ? nil : try? JSONValue.decode(Data(stream.rawValue.utf8))
            return sseResponse { [self] writer throws in
                try await follow(stream, of: session, after: cursor.eventID, requestID: requestID, writer: &writer)
            }
        }
        // The standalone stream starts at the session's newest event: a resume replays only
        // what is sent on it from now on.
        let newest: Int64
        do {
            newest = try await storage.recentEvents(in: session, limit: 1).last?.id ?? 0
        } catch {
            throw failure(error)
        }
        let priming = SSE.priming(EventCursor(eventID: newest, session: session, stream: .standalone), retry: configuration.retryInterval)
        return sseResponse { [self] writer throws in
            try await writer.write(priming)
            try await follow(.standalone, of: session, after: newest, requestID: nil, writer: &writer)
        }
    }

    // MARK: DELETE: end the session everywhere

    func delete(_ request: Request) async throws(HTTPFailure) -> Response {
        try checkOrigin(request)
        let id = try sessionID(request)
        let deleted: Bool
        do {
            deleted = try await storage.deleteSession(id)
        } catch {
            throw failure(error)
        }
        guard deleted else { throw .sessionNotFound }
        hub.close(id)
        logger.debug("session deleted", metadata: ["session": "\(id)"])
        return Response(status: .ok)
    }
}
