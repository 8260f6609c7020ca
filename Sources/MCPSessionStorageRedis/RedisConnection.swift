import CHiredis
@_spi(Backend) import MCPSessionStorage
import NIOCore
import NIOPosix
import Synchronization

/// A command on its way to Redis, where its reply goes, and when the reply is overdue.
struct RedisRequest {
    var args: [String]
    var reply: EventLoopPromise<RESPValue>
    var deadline: NIODeadline
}

/// The deadline of the operation the current task runs (set by the storage for each call); a
/// command sent outside one is given `fallback`.
enum RedisDeadline {
    @TaskLocal static var current: NIODeadline?
    static let fallback = TimeAmount.seconds(5)
    static var forNextCommand: NIODeadline { current ?? .now() + fallback }
}

/// The RESP codec on a connection's pipeline: hiredis formats each command
/// (`redisFormatCommandArgv`) and parses the byte stream back into replies (`redisReader`), which
/// go to the commands in the order they were sent. Any number of commands may be in flight: a
/// connection is a pipeline. On a subscribed connection, published messages (`message` arrays)
/// go to `onMessage` instead, on the event loop, as they are read.
///
/// Each command carries its deadline. One timer per connection, armed for the earliest deadline
/// among the commands waiting, fails a command that reaches its deadline unanswered (its reply,
/// should it still come, is read and dropped, so the others keep their places). A connection
/// whose oldest command has waited `silenceLimit` (the operation timeout) is taken for dead: it
/// is closed, failing the rest, and the next call opens a new one.
final class RESPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private let reader: UnsafeMutablePointer<redisReader>
    /// The commands sent and not answered, oldest first.
    private var waiting = CircularBuffer<Waiting>()
    private let onMessage: (@Sendable (RESPValue) -> Void)?
    private let silenceLimit: TimeAmount
    private var timer: (deadline: NIODeadline, task: Scheduled<Void>)?

    private struct Waiting {
        /// Nil once the command timed out: its reply, if it comes, is dropped.
        var reply: EventLoopPromise<RESPValue>?
        let deadline: NIODeadline
        let sent: NIODeadline
    }

    init(silenceLimit: TimeAmount, onMessage: (@Sendable (RESPValue) -> Void)? = nil) {
        self.silenceLimit = silenceLimit
        reader = redisReaderCreate()
        // hiredis keeps at most this much unused buffer between replies; 0 would never shrink it.
        reader.pointee.maxbuf = 64 * 1024
        self.onMessage = onMessage
    }

    deinit { redisReaderFree(reader) }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
    }

    /// Arms the timer for `deadline` unless it is armed for an earlier one.
    private func arm(_ deadline: NIODeadline, context: ChannelHandlerContext) {
        if let timer, timer.deadline <= deadline { return }
        timer?.task.cancel()
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.handler.deadlineReached(context: loopBound.value.context)
        }
        timer = (deadline, task)
    }

    private func deadlineReached(context: ChannelHandlerContext) {
        timer = nil
        guard let oldest = waiting.first else { return }
        let now = NIODeadline.now()
        if oldest.sent + silenceLimit <= now {
            failAll(RedisConnectionError.timedOut)
            context.close(promise: nil)
            return
        }
        var next = oldest.sent + silenceLimit
        for index in waiting.indices where waiting[index].reply != nil {
            if waiting[index].deadline <= now {
                waiting[index].reply?.fail(RedisConnectionError.timedOut)
                waiting[index].reply = nil
            } else {
                next = min(next, waiting[index].deadline)
            }
        }
        arm(next, context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 128)
        RESPRequest.encode(request.args, into: &buffer)
        let now = NIODeadline.now()
        waiting.append(Waiting(reply: request.reply, deadline: request.deadline, sent: now))
        arm(min(request.deadline, now + silenceLimit), context: context)
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
            } else if let command = waiting.popFirst() {
                command.reply?.succeed(value)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        failAll(RedisConnectionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let command = waiting.popFirst() { command.reply?.fail(error) }
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
    /// No reply by the command's deadline (the connection is closed too once it has been silent for a whole timeout).
    case timedOut

    var description: String {
        switch self {
        case .closed: "the connection closed"
        case .protocolError(let message): "malformed reply: \(message)"
        case .timedOut: "no reply in time"
        }
    }
}

/// One TCP connection to a Redis server, pipelined: commands from any number of tasks go out as
/// they come, and each gets its own reply.
///
/// Commands sent from outside the event loop wait in an outbox; the first one in an empty outbox
/// schedules one drain on the loop, which writes everything queued by then and flushes once. Many
/// concurrent callers thus share one hop to the loop and one `write` system call.
final class RedisConnection: Sendable {
    let channel: any Channel
    private let outbox = Mutex(Outbox())

    private struct Outbox {
        var commands: [RedisRequest] = []
        var drainScheduled = false
    }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Queues `commands` (kept together, in order) for the next drain.
    private func enqueue(_ commands: [RedisRequest]) {
        let schedule = outbox.withLock { outbox -> Bool in
            outbox.commands.append(contentsOf: commands)
            defer { outbox.drainScheduled = true }
            return !outbox.drainScheduled
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
    }

    /// On the event loop: writes every queued command, then flushes once.
    private func drain() {
        let commands = outbox.withLock { outbox -> [RedisRequest] in
            outbox.drainScheduled = false
            defer { outbox.commands = [] }
            return outbox.commands
        }
        guard channel.isActive else {
            for command in commands { command.reply.fail(RedisConnectionError.closed) }
            return
        }
        for command in commands { channel.write(command, promise: nil) }
        channel.flush()
    }

    /// Opens a connection, authenticates and selects the database.
    /// - Parameter eventLoop: The loop the connection lives on; by default the next of NIO's
    ///   shared group.
    static func connect(
        to address: RedisAddress, password: String?, database: Int, connectTimeout: Duration, silenceLimit: Duration, name: String? = nil,
        on eventLoop: (any EventLoop)? = nil, onMessage: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let channel = try await ClientBootstrap(group: eventLoop ?? MultiThreadedEventLoopGroup.singleton.next())
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RESPHandler(silenceLimit: TimeAmount(silenceLimit), onMessage: onMessage))
                }
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

    /// Sends one command and returns its reply (an error reply too: callers decide). Throws
    /// at the deadline of the current operation (``RedisDeadline``), and at once when the
    /// calling task is cancelled.
    func send(_ args: [String]) async throws -> RESPValue {
        let reply = channel.eventLoop.makePromise(of: RESPValue.self)
        enqueue([RedisRequest(args: args, reply: reply, deadline: RedisDeadline.forNextCommand)])
        return try await Self.value(of: reply.futureResult)
    }

    /// Sends several commands back to back on this connection (`ASKING` must be followed by its
    /// command on the same connection) and returns their replies, in order.
    func send(pipelined commands: [[String]]) async throws -> [RESPValue] {
        let deadline = RedisDeadline.forNextCommand
        let replies = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        enqueue(zip(commands, replies).map { RedisRequest(args: $0, reply: $1, deadline: deadline) })
        var values: [RESPValue] = []
        for reply in replies { values.append(try await Self.value(of: reply.futureResult)) }
        return values
    }

    /// The future's value, awaited with one hop back from the event loop; a cancelled caller
    /// gets `CancellationError` at once (the reply, when it comes, is dropped).
    private static func value(of future: EventLoopFuture<RESPValue>) async throws -> RESPValue {
        let outcome = FirstOutcome<RESPValue>()
        future.whenComplete { outcome.resolve($0) }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            outcome.resolve(.failure(CancellationError()))
        }
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
