import MCPSessionStorage
import Synchronization

/// The SSE answer to one POST on the instance that runs it: every message is appended to the
/// request's stream in storage and then handed, already stored, to the connection's writer.
///
/// The writer does not read its own request's events back from storage: on this instance the
/// running call is the only writer of the stream (its id is the request id), so what it stored
/// is exactly what the stream holds. A stream resumed elsewhere reads storage instead.
///
/// **Priming.** A stream's first event gives the client an id to resume from. A call that
/// answers within ``MCPServer/Configuration/primingDelay`` needs none: its response is that
/// event. Otherwise (or before its first notification) the priming event, empty with `retry`,
/// is stored first; every append goes through ``prime()``, so it is always the stream's first event.
final class RequestStream: Sendable {
    enum Item: Sendable {
        /// A stored event, to write with its id.
        case stored(SSEEvent)
        /// An error that could not be stored (storage is down), to write without an id.
        case unstored(JSONValue)
    }

    private enum Phase {
        case open
        case priming(Task<Result<Void, SessionStorageError>, Never>)
        case primed
        case finished
    }

    let items: AsyncStream<Item>
    private let continuation: AsyncStream<Item>.Continuation
    private let phase = Mutex(Phase.open)
    private let server: MCPServer
    private let session: SessionID
    private let stream: StreamID

    init(server: MCPServer, session: SessionID, stream: StreamID) {
        (items, continuation) = AsyncStream.makeStream(of: Item.self)
        self.server = server
        self.session = session
        self.stream = stream
    }

    /// Stores the priming event if the stream has no event yet; at most once.
    func prime() async throws(SessionStorageError) {
        let pending = phase.withLock { phase -> Task<Result<Void, SessionStorageError>, Never>? in
            switch phase {
            case .open:
                let task = Task { [server, session, stream, continuation] () -> Result<Void, SessionStorageError> in
                    do throws(SessionStorageError) {
                        continuation.yield(.stored(try await server.append(nil, to: stream, in: session, retry: true)))
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
                phase = .priming(task)
                return task
            case .priming(let task): return task
            case .primed, .finished: return nil
            }
        }
        guard let pending else { return }
        let outcome = await pending.value
        phase.withLock { if case .priming = $0 { $0 = .primed } }
        try outcome.get()
    }

    /// Stores a notification (after the priming event) and hands it to the writer.
    func send(_ message: JSONValue) async throws(SessionStorageError) {
        try await prime()
        continuation.yield(.stored(try await server.append(message, to: stream, in: session)))
    }

    /// Stores the response and ends the stream. A call that sent nothing stores no priming event.
    func finish(_ response: JSONValue, requestID: JSONValue) async {
        let pending = phase.withLock { phase -> Task<Result<Void, SessionStorageError>, Never>? in
            defer { phase = .finished }
            if case .priming(let task) = phase { return task }
            return nil
        }
        if let pending { _ = await pending.value }
        do {
            continuation.yield(.stored(try await server.append(response, to: stream, in: session)))
        } catch {
            server.logger.warning("could not store a response", metadata: ["session": "\(session)", "error": "\(error)"])
            continuation.yield(.unstored(OutgoingMessage.error(id: requestID, MCPServer.rpcError(error))))
        }
        continuation.finish()
    }
}
