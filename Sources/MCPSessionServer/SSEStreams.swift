import Hummingbird
import MCPSessionStorage

/// Server-sent event streams: the response that carries them, and the loop that follows a
/// stream in storage (a resumed one, or the standalone one).
extension MCPServer {
    func sseResponse(_ write: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
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
                events = try await storage.events(in: session, stream: stream, after: cursor, limit: page)
            } catch {
                if error.code != .sessionNotFound, let requestID {
                    try await writer.write(SSE.frame(unstored: OutgoingMessage.error(id: requestID, Self.rpcError(error))))
                }
                return
            }
            for event in events {
                cursor = event.id
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
}
