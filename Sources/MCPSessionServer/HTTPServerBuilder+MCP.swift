import Hummingbird
import HummingbirdCore
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 as an MCP server exposed to untrusted clients needs it:
    ///
    /// - A header deadline: a connection must complete a request's headers within
    ///   `headerTimeout` of opening, or of the end of its previous response; one that trickles
    ///   header lines and never ends them is closed. The same deadline bounds a pause inside a
    ///   request body. An open response (an SSE stream) is never cut by it.
    /// - `Connection: close` on a response shuts the connection after it (see the refusals of
    ///   malformed or oversized bodies).
    ///
    /// ```swift
    /// let app = Application(
    ///     router: router, server: .mcp(headerTimeout: .seconds(10)),
    ///     configuration: .init(address: .hostname("127.0.0.1", port: 8080),
    ///                          availableConnectionsDelegate: ConnectionLimit(maximum: ConnectionLimit.defaultMaximum, logger: logger)))
    /// ```
    public static func mcp(headerTimeout: Duration = .seconds(10)) -> HTTPServerBuilder {
        // Hummingbird's idle timeout counts from the connection's start and from each response's
        // end, and only whole HTTP parts (a complete head, a body chunk) reset it: header bytes
        // arriving one line at a time do not.
        .http1(
            configuration: HTTP1Channel.Configuration(
                additionalChannelHandlers: [CloseAfterResponseHandler()], idleTimeout: TimeAmount(headerTimeout)))
    }
}
