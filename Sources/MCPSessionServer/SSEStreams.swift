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
    /// A request stream also watches its call: if nothing is appended and the call's lease is
    /// not renewed for ``Configuration/callLeaseTimeout``, its instance stopped, and this loop
    /// ends the call with ``RPCError/instanceStopped``, stored as the stream's last event.
    func follow(_ stream: StreamID, of session: SessionID, after cursor: Int64, requestID: JSONValue?, writer: inout any ResponseBodyWriter)
        async throws
    {
        let waiter = hub.waiter(for: session)
        defer { hub.remove(waiter, for: session) }
        var cursor = cursor
        var idleSince = ContinuousClock.now
        var watch = OrphanWatch(lease: CallLease(timeout: configuration.callLeaseTimeout))
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
                watch.progressed()
                if requestID != nil, OutgoingMessage.isResponse(event.data) { return }
            }
            if events.count == page { continue }
            if waiter.isClosed { return }
            if let requestID, watch.isCheckDue, await endIfOrphaned(stream, of: session, after: cursor, requestID: requestID, watch: &watch) {
                continue
            }
            await waiter.wait(upTo: min(configuration.pollInterval, configuration.keepAliveInterval, watch.lease.renewal))
            if ContinuousClock.now - idleSince >= configuration.keepAliveInterval {
                try await writer.write(SSE.keepAlive)
                idleSince = .now
            }
        }
    }

    /// Reads the call's lease; if the call is orphaned, takes the lease over (only one
    /// instance can) and stores the error answer, unless the call's own answer got there first.
    /// Returns whether it ended the call, so the stream has its answer to read.
    private func endIfOrphaned(
        _ stream: StreamID, of session: SessionID, after cursor: Int64, requestID: JSONValue, watch: inout OrphanWatch
    ) async -> Bool {
        let name = CallLease.name(for: stream)
        do {
            guard watch.observe(try await storage.lease(name, in: session)) else { return false }
            let (expected, new) = watch.claim(by: instanceID)
            guard try await storage.swapLease(name, in: session, expected: expected, new: new) else { return false }
            let pending = try await storage.events(in: session, stream: stream, after: cursor, limit: nil)
            if !pending.contains(where: { OutgoingMessage.isResponse($0.data) }) {
                logger.warning(
                    "the instance running a call stopped; answering it with an error", metadata: ["session": "\(session)", "stream": "\(stream)"])
                try await append(OutgoingMessage.error(id: requestID, .instanceStopped), to: stream, in: session)
            }
            return true
        } catch {
            // Storage unreachable (or the session gone): the next read of the stream says which.
            return false
        }
    }
}
