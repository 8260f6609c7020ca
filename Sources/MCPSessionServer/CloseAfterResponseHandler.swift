import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Honours `Connection: close` on a response: once that response is written, the server shuts
/// its side of the connection, so the client sees the end at once and the connection is not
/// used for another request.
///
/// The server refuses a body this way (too large, or shorter than its `Content-Length`): the
/// connection's framing can no longer be trusted. Only the output is shut, so what the client
/// is still sending does not turn the response into a reset; the connection closes for good
/// when the client closes its side, or at the header deadline (``HTTPServerBuilder/mcp(headerTimeout:)``).
final class CloseAfterResponseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var closeAfterEnd = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            closeAfterEnd = head.headerFields[.connection]?.lowercased() == "close"
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            guard closeAfterEnd else { return context.write(data, promise: promise) }
            closeAfterEnd = false
            context.writeAndFlush(data, promise: promise)
            context.close(mode: .output, promise: nil)
        }
    }
}

@available(*, unavailable)
extension CloseAfterResponseHandler: Sendable {}
