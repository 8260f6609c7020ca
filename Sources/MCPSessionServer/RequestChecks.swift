import Foundation
import HTTPTypes
import Hummingbird
import MCPSessionStorage

/// What every request is checked for before it reaches a method, and how refusals and
/// storage errors become HTTP answers.
extension MCPServer {
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
            throw .badRequest(
                "unsupported MCP-Protocol-Version \(version.prefix(32)); supported: \(Self.supportedProtocolVersions.joined(separator: ", "))")
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
