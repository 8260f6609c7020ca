import CHiredis
import NIOCore
import NIOPosix
import Synchronization

/// A command on its way to Redis, and where its reply goes.
struct RedisRequest {
    var args: [String]
    var reply: EventLoopPromise<RESPValue>
}

/// The RESP codec on a connection's pipeline: hiredis formats each command
/// (`redisFormatCommandArgv`) and parses the byte stream back into replies (`redisReader`), which
/// go to the commands in the order they were sent. Any number of commands may be in flight: a
/// connection is a pipeline. On a subscribed connection, published messages (`message` arrays)
/// go to `onMessage` instead, on the event loop, as they are read.
final class RESPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private let reader: UnsafeMutablePointer<redisReader>
    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()
    private let onMessage: (@Sendable (RESPValue) -> Void)?

    init(onMessage: (@Sendable (RESPValue) -> Void)? = nil) {
        reader = redisReaderCreate()
        // hiredis keeps at most this much unused buffer between replies; 0 would never shrink it.
        reader.pointee.maxbuf = 64 * 1024
        self.onMessage = onMessage
    }

    deinit { redisReaderFree(reader) }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 128)
        RESPRequest.encode(request.args, into: &buffer)
        waiting.append(request.reply)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { bytes in
            _ = redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
                let message = withUnsafeBytes(of: &reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                failAll(RedisConnectionError.protocolError(message))
                context.close(promise: nil)
                return
            }
            guard let reply else { return }
            let value = RESPValue(reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
            if let onMessage, Self.isMessage(value) {
                onMessage(value)
            } else if let promise = waiting.popFirst() {
                promise.succeed(value)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisConnectionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }

    /// A message published to a channel this connection subscribed to: `["message", channel, payload]`.
    private static func isMessage(_ value: RESPValue) -> Bool {
        guard case .array(let elements?) = value, elements.count == 3, case .bulk(let kind?) = elements[0] else { return false }
        return kind.elementsEqual("message".utf8)
    }
}

@available(*, unavailable)
extension RESPHandler: Sendable {}

/// Why a connection failed a command without a reply from Redis.
enum RedisConnectionError: Error, CustomStringConvertible {
    case closed
    case protocolError(String)

    var description: String {
        switch self {
        case .closed: "the connection closed"
        case .protocolError(let message): "malformed reply: \(message)"
        }
    }
}

/// One TCP connection to a Redis server, pipelined: commands from any number of tasks go out as
/// they come, and each gets its own reply.
final class RedisConnection: Sendable {
    let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Opens a connection, authenticates and selects the database.
    static func connect(
        to address: RedisAddress, password: String?, database: Int, connectTimeout: Duration, name: String? = nil,
        onMessage: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RESPHandler(onMessage: onMessage)) }
            }
            .connect(host: address.host, port: address.port).get()
        let connection = RedisConnection(channel: channel)
        do {
            if let password { try await connection.send(["AUTH", password]).check() }
            if database != 0 { try await connection.send(["SELECT", String(database)]).check() }
            if let name { try await connection.send(["CLIENT", "SETNAME", name]).check() }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    var isActive: Bool { channel.isActive }

    /// Sends one command and returns its reply (an error reply too: callers decide).
    func send(_ args: [String]) async throws -> RESPValue {
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.writeAndFlush(RedisRequest(args: args, reply: reply)).whenFailure { reply.fail($0) }
        return try await reply.futureResult.get()
    }

    /// Sends several commands back to back on this connection (`ASKING` must be followed by its
    /// command on the same connection) and returns their replies, in order.
    func send(pipelined commands: [[String]]) async throws -> [RESPValue] {
        let replies = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        for (command, reply) in zip(commands, replies) {
            channel.write(RedisRequest(args: command, reply: reply)).whenFailure { reply.fail($0) }
        }
        channel.flush()
        var values: [RESPValue] = []
        for reply in replies { values.append(try await reply.futureResult.get()) }
        return values
    }

    func close() {
        channel.close(promise: nil)
    }
}

extension RESPValue {
    /// Throws the error a reply carries.
    @discardableResult
    func check() throws -> RESPValue {
        if case .error(let message) = self { throw RedisReplyError(message: message) }
        return self
    }
}

/// An error reply from Redis (`-ERR …`, `-MOVED …`, `-NOSCRIPT …`).
struct RedisReplyError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
    /// The first word: `ERR`, `MOVED`, `ASK`, `NOSCRIPT`, `TRYAGAIN`, `LOADING`, …
    var kind: Substring { message.prefix { $0 != " " } }
}

/// Where a Redis server listens.
struct RedisAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var description: String { "\(host):\(port)" }
}
