import Foundation
import HTTPTypes
import Hummingbird
import MCPSessionStorage

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

    static func badRequest(_ message: String, id: JSONValue = .null) -> HTTPFailure {
        HTTPFailure(status: .badRequest, error: .invalidRequest(message), id: id)
    }

    static let sessionNotFound = HTTPFailure(status: .notFound, error: .invalidRequest("session not found: unknown, expired or deleted; initialize a new one"))

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = "\(retryAfterSeconds)" }
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
        router.post(path) { request, _ in await self.respond { () throws(HTTPFailure) in try await self.post(request) } }
        router.get(path) { request, _ in await self.respond { () throws(HTTPFailure) in try await self.get(request) } }
        router.delete(path) { request, _ in await self.respond { () throws(HTTPFailure) in try await self.delete(request) } }
    }

    private func respond(_ handle: () async throws(HTTPFailure) -> Response) async -> Response {
        do {
            return try await handle()
        } catch {
            return error.response
        }
    }

    // MARK: POST: one JSON-RPC message

    func post(_ request: Request) async throws(HTTPFailure) -> Response {
        try checkOrigin(request)
        guard let type = request.headers[.contentType], Self.mediaType(type) == "application/json" else {
            throw HTTPFailure(status: .unsupportedMediaType, error: .invalidRequest("Content-Type must be application/json"))
        }
        let delivery = try Self.delivery(accept: request.headers[.accept])
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch {
            throw HTTPFailure(status: .contentTooLarge, error: .invalidRequest("request body is larger than \(configuration.maxBodyBytes) bytes"))
        }
        let value: JSONValue
        do {
            value = try JSONValue.decode(Data(body.readableBytesView))
        } catch {
            throw HTTPFailure(status: .badRequest, error: .parseError("malformed JSON: \(error.message)"))
        }
        let message: IncomingMessage
        do {
            message = try IncomingMessage(value)
        } catch {
            throw HTTPFailure(status: .badRequest, error: error, id: IncomingMessage.id(in: value))
        }
        if case .request(let id, "initialize", let params) = message {
            return try await initialize(id: id, params: params, delivery: delivery)
        }
        let session = try await requireSession(request)
        switch message {
        case .request(let id, let method, let params):
            let stream: StreamID
            do {
                stream = try StreamID.request(id)
            } catch {
                throw HTTPFailure.badRequest("request id is too long", id: id)
            }
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

    private func initialize(id: JSONValue, params: JSONValue?, delivery: Delivery) async throws(HTTPFailure) -> Response {
        let created: (SessionInfo, JSONValue)
        do {
            created = try await initialize(params: params)
        } catch let error as RPCError {
            throw HTTPFailure(status: .badRequest, error: error, id: id)
        } catch {
            throw failure(error, id: id)
        }
        let (session, result) = created
        let stream = try! StreamID.request(id)  // a string or integer id always makes a valid stream id
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
            calls.start(session: session, stream: stream) { [configuration] in
                let timer = Task {
                    try await Task.sleep(for: configuration.primingDelay)
                    try await answer.prime()
                }
                let message = await work { message throws(SessionStorageError) in try await answer.send(message) }
                timer.cancel()
                await answer.finish(message, requestID: requestID)
            }
            return sseResponse { writer throws in
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
            do {
                guard let event = try await storage.event(cursor.eventID, in: session) else {
                    throw HTTPFailure.badRequest("event \(cursor.eventID) is no longer stored; the stream cannot be resumed")
                }
                stream = event.stream
            } catch let error as HTTPFailure {
                throw error
            } catch {
                throw failure(error)
            }
            let requestID = stream == .standalone ? nil : try? JSONValue.decode(Data(stream.rawValue.utf8))
            return sseResponse { [self] writer throws in
                try await follow(stream, of: session, after: cursor.eventID, requestID: requestID, writer: &writer)
            }
        }
        let priming: SSEEvent
        do {
            priming = try await append(nil, to: .standalone, in: session, retry: true)
        } catch {
            throw failure(error)
        }
        return sseResponse { [self] writer throws in
            try await writer.write(SSE.frame(priming, session: session))
            try await follow(.standalone, of: session, after: priming.id, requestID: nil, writer: &writer)
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

    // MARK: Streams

    private func sseResponse(_ write: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache, no-transform"],
            body: ResponseBody { writer in
                try await write(&writer)
                try await writer.finish(nil)
            })
    }

    /// Writes the events of `stream` stored after `cursor`, as they are appended, until the
    /// request's response (for a request stream), the session's deletion, or shutdown.
    ///
    /// Every event is read from storage, here or on another instance: what reaches the wire
    /// was stored first, and a resumed stream is the same loop started from the client's cursor.
    func follow(_ stream: StreamID, of session: SessionID, after cursor: Int64, requestID: JSONValue?, writer: inout any ResponseBodyWriter) async throws {
        let waiter = hub.waiter(for: session)
        defer { hub.remove(waiter, for: session) }
        var cursor = cursor
        var idleSince = ContinuousClock.now
        let page = 100
        while !Task.isCancelled {
            let events: [SSEEvent]
            do {
                events = try await storage.events(in: session, after: cursor, limit: page)
            } catch {
                if error.code != .sessionNotFound, let requestID {
                    try await writer.write(SSE.frame(unstored: OutgoingMessage.error(id: requestID, Self.rpcError(error))))
                }
                return
            }
            for event in events {
                cursor = event.id
                guard event.stream == stream else { continue }
                try await writer.write(try SSE.frame(event, session: session))
                idleSince = .now
                if requestID != nil, OutgoingMessage.isResponse(event.data) { return }
            }
            if events.count == page { continue }
            if waiter.isClosed { return }
            await waiter.wait(upTo: min(configuration.pollInterval, configuration.keepAliveInterval))
            if ContinuousClock.now - idleSince >= configuration.keepAliveInterval {
                try await writer.write(SSE.keepAlive)
                idleSince = .now
            }
        }
    }

    // MARK: Checks

    /// The DNS-rebinding guard: a browser's `Origin` must be local or allowed.
    func checkOrigin(_ request: Request) throws(HTTPFailure) {
        guard let origin = request.headers[.origin] else { return }
        if configuration.allowedOrigins.contains(origin) { return }
        if let url = URL(string: origin), let host = url.host, ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host.lowercased()) { return }
        throw HTTPFailure(status: .forbidden, error: .invalidRequest("origin \(origin.prefix(128)) is not allowed"))
    }

    func sessionID(_ request: Request) throws(HTTPFailure) -> SessionID {
        guard let text = request.headers[.mcpSessionID] else { throw .badRequest("missing Mcp-Session-Id header: send initialize first") }
        guard let id = try? SessionID(validating: text) else { throw .sessionNotFound }
        return id
    }

    /// The request's session: 400 without one or with an unsupported protocol version, 404 if
    /// it is unknown, expired or deleted, 503 while storage is unavailable.
    func requireSession(_ request: Request) async throws(HTTPFailure) -> SessionInfo {
        let id = try sessionID(request)
        if let version = request.headers[.mcpProtocolVersion], !Self.supportedProtocolVersions.contains(version) {
            throw .badRequest("unsupported MCP-Protocol-Version \(version.prefix(32)); supported: \(Self.supportedProtocolVersions.joined(separator: ", "))")
        }
        do {
            guard let session = try await liveSession(id) else { throw HTTPFailure.sessionNotFound }
            return session
        } catch let error as HTTPFailure {
            throw error
        } catch {
            throw failure(error)
        }
    }

    func failure(_ error: any Error, id: JSONValue = .null) -> HTTPFailure {
        guard let error = error as? SessionStorageError else {
            return HTTPFailure(status: .internalServerError, error: .internalError("internal error"), id: id)
        }
        switch error.code {
        case .unavailable:
            logger.warning("session storage unavailable", metadata: ["error": "\(error)"])
            return HTTPFailure(status: .serviceUnavailable, error: Self.rpcError(error), id: id, retryAfterSeconds: configuration.retryAfterSeconds)
        case .sessionNotFound:
            var failure = HTTPFailure.sessionNotFound
            failure.id = id
            return failure
        case .invalidInput, .limitExceeded:
            return HTTPFailure(status: .badRequest, error: Self.rpcError(error), id: id)
        default:
            logger.error("session storage failed", metadata: ["error": "\(error)"])
            return HTTPFailure(status: .internalServerError, error: Self.rpcError(error), id: id)
        }
    }

    static func mediaType(_ header: String) -> String {
        header.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    }

    static func accepts(_ accept: String, _ type: String) -> Bool {
        accept.split(separator: ",").contains { item in
            let media = mediaType(String(item))
            return media == type || media == "*/*" || media == type.split(separator: "/")[0] + "/*"
        }
    }

    /// SSE when the client accepts it, JSON when it accepts only JSON, 406 otherwise.
    static func delivery(accept: String?) throws(HTTPFailure) -> Delivery {
        guard let accept else { return .json }
        let media = accept.split(separator: ",").map { mediaType(String($0)) }
        if media.contains("text/event-stream") { return .sse }
        if media.contains(where: { ["application/json", "application/*", "*/*"].contains($0) }) { return .json }
        throw HTTPFailure(status: .notAcceptable, error: .invalidRequest("Accept must include application/json or text/event-stream"))
    }
}
