// The fastest a Swift client on SwiftNIO gets on one of our Redis commands: the floor under what
// any storage built this way can reach, printed beside redis-benchmark by `scripts/bench`.
//
//   RedisFloor PORT COMMAND_JSON CALLERS SECONDS [--plain-task]  -> ops/s
//
// COMMAND_JSON is a file holding the command as a JSON array of strings (Benchmarks/redis/replay.py
// writes the EVALSHA it captured). The command is encoded once; each caller has its own
// connection (as each of redis-benchmark's clients has), sends it, waits for the reply and sends
// it again. A reply is only delimited, never converted, so this does less than any client that
// reads what it asked for. Each caller runs on its connection's event loop, so a command costs
// no thread hop. With `--plain-task` the callers run on the default executor instead, as a
// storage's callers do: each command then hops to the event loop and back, which no storage can
// spare a caller that is not already on that loop.
import Foundation
// Only for its `EventLoopExecutor`: the floor uses nothing else of the storage.
@_spi(Benchmark) import MCPSessionStorageRedis
import NIOCore
import NIOPosix

/// The end of the first complete RESP2 value in `bytes` from `start`, or nil while incomplete.
func endOfReply(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
    guard start < bytes.count else { return nil }
    var index = start + 1
    guard let lineEnd = endOfLine(bytes, from: index) else { return nil }
    func number() -> Int { Int(String(decoding: bytes[index..<lineEnd - 2], as: UTF8.self)) ?? -1 }
    switch bytes[start] {
    case UInt8(ascii: "$"):
        let length = number()
        index = lineEnd
        if length < 0 { return index }
        return index + length + 2 <= bytes.count ? index + length + 2 : nil
    case UInt8(ascii: "*"):
        let count = number()
        index = lineEnd
        for _ in 0..<max(0, count) {
            guard let next = endOfReply(bytes, from: index) else { return nil }
            index = next
        }
        return index
    default:  // + - : one line
        return lineEnd
    }
}

/// The index after the next CRLF at or after `start`.
func endOfLine(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
    var index = start
    while index + 1 < bytes.count {
        if bytes[index] == 13 && bytes[index + 1] == 10 { return index + 2 }
        index += 1
    }
    return nil
}

/// Resumes the caller waiting on each reply, in order.
final class ReplyCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var pending: ByteBuffer?
    var waiting = CircularBuffer<CheckedContinuation<Void, any Error>>()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var pending = self.pending {
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        var consumed = 0
        buffer.withUnsafeReadableBytes { bytes in
            while let end = endOfReply(bytes, from: consumed) {
                consumed = end
                waiting.popFirst()?.resume()
            }
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        pending = buffer.readableBytes > 0 ? buffer : nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let caller = waiting.popFirst() { caller.resume(throwing: ChannelError.ioOnClosedChannel) }
    }
}

/// One caller's connection: sends the command, resumes when its reply is complete.
struct Caller: @unchecked Sendable {
    // Unchecked: `counter` is only touched on `channel.eventLoop` (inside `eventLoop.execute` or
    // the pipeline's own callbacks), which serializes every access.
    let channel: any Channel
    let counter: ReplyCounter

    func roundTrip(_ command: ByteBuffer) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if channel.eventLoop.inEventLoop {
                counter.waiting.append(continuation)
                channel.writeAndFlush(command, promise: nil)
            } else {
                channel.eventLoop.execute {
                    counter.waiting.append(continuation)
                    channel.writeAndFlush(command, promise: nil)
                }
            }
        }
    }
}

/// The command in RESP: `*<n>\r\n$<len>\r\n<arg>\r\n…`.
func encode(_ args: [String]) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: 256)
    buffer.writeString("*\(args.count)\r\n")
    for arg in args {
        buffer.writeString("$\(arg.utf8.count)\r\n")
        buffer.writeString(arg)
        buffer.writeString("\r\n")
    }
    return buffer
}

let arguments = CommandLine.arguments
guard arguments.count >= 5, let port = Int(arguments[1]), let callers = Int(arguments[3]), let seconds = Double(arguments[4]),
    let json = FileManager.default.contents(atPath: arguments[2]), let args = try? JSONDecoder().decode([String].self, from: json)
else {
    FileHandle.standardError.write(Data("usage: RedisFloor PORT COMMAND_JSON CALLERS SECONDS [--plain-task]\n".utf8))
    exit(2)
}
let plainTask = arguments.dropFirst(5).contains("--plain-task")
let command = encode(args)

let loops = MultiThreadedEventLoopGroup.singleton
var connections: [Caller] = []
for _ in 0..<callers {
    let counter = ReplyCounter()
    let channel = try await ClientBootstrap(group: loops.next())
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(counter) }
        }
        .connect(host: "127.0.0.1", port: port).get()
    connections.append(Caller(channel: channel, counter: counter))
}
let deadline = ContinuousClock.now + .seconds(seconds)
let total = try await withThrowingTaskGroup(of: Int.self) { group in
    for caller in connections {
        group.addTask(executorPreference: plainTask ? nil : EventLoopExecutor(caller.channel.eventLoop)) {
            var done = 0
            while ContinuousClock.now < deadline {
                try await caller.roundTrip(command)
                done += 1
            }
            return done
        }
    }
    var total = 0
    for try await done in group { total += done }
    return total
}
for caller in connections { try await caller.channel.close().get() }
print(Int(Double(total) / seconds))
