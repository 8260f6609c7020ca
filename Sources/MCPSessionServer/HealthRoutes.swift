import Foundation
import HTTPTypes
import Hummingbird
import MCPSessionStorage

extension MCPServer {
    /// `GET /health` and `GET /ready` (``Configuration/healthPath``, ``Configuration/readyPath``),
    /// for load balancers, orchestrators and container health checks.
    func addHealthRoutes<Context: RequestContext>(to router: Router<Context>) {
        if let path = configuration.healthPath {
            router.get(RouterPath(path)) { _, _ in Self.json(.ok, ["status": "ok"]) }
        }
        if let path = configuration.readyPath {
            router.get(RouterPath(path)) { _, _ in await self.readiness() }
        }
    }

    /// Ready: storage answers a read (within its own timeout), and the bus, if there is one, is
    /// connected. Otherwise 503 with what is not ready, and `Retry-After`.
    func readiness() async -> Response {
        var problems: [String: JSONValue] = [:]
        do {
            _ = try await storage.sessionVersion(try SessionID(validating: "readiness-check"))
        } catch {
            problems["storage"] = JSONValue.string(error.message)
        }
        if !busConnected.load(ordering: .relaxed) { problems["bus"] = "not connected" }
        guard problems.isEmpty else {
            problems["status"] = "not ready"
            return Self.json(.serviceUnavailable, .object(problems), retryAfter: configuration.retryAfterSeconds)
        }
        return Self.json(.ok, ["status": "ready"])
    }

    private static func json(_ status: HTTPResponse.Status, _ value: JSONValue, retryAfter: Int? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        let body = (try? value.encoded()) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
