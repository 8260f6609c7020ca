import MCPSessionStorage
import NIOCore
import NIOPosix
import Testing

@_spi(Benchmark) @testable import MCPSessionStorageRedis

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Redis connections", .enabled(if: RedisTestEnvironment.redis.shouldRun, RedisTestEnvironment.skipReason))
struct RedisConnectionTests {
    @Test("a connection sets no socket option that needs privileges (TCP_NODELAY's number at the socket level is SO_DEBUG, refused in containers)")
    func noPrivilegedOptions() async throws {
        let configuration = try RedisSessionStorage.Configuration(url: RedisTestEnvironment.redis.url)
        let connection = try await RedisConnection.connect(
            to: try #require(try configuration.validated().first), password: configuration.password, database: configuration.database,
            connectTimeout: .seconds(2), silenceLimit: .seconds(2))
        defer { connection.close() }
        // As root, setting SO_DEBUG succeeds: read it back rather than rely on a refusal.
        let debug = try await connection.channel.getOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_DEBUG))).get()
        #expect(debug == 0, "SO_DEBUG is set: a process without CAP_NET_ADMIN cannot open this connection")
        let noDelay = try await connection.channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
        #expect(noDelay != 0, "Nagle's algorithm delays small writes")
        #expect(try await connection.send(["PING"]).string == "PONG")
    }

    @Test("a caller on one of NIO's event loops uses the connection on that loop; other callers take the connections in turn")
    func connectionOfTheCallersLoop() async throws {
        let configuration = try RedisSessionStorage.Configuration(url: RedisTestEnvironment.redis.url)
        let node = RedisNode(
            address: try #require(try configuration.validated().first), password: configuration.password, database: configuration.database,
            connections: 2, connectTimeout: .seconds(2), operationTimeout: .seconds(2))
        defer { node.close() }
        for loop in Array(MultiThreadedEventLoopGroup.singleton.makeIterator()).prefix(2) {
            let (connections, onItsLoop) = try await Task(executorPreference: EventLoopExecutor(loop)) {
                var connections: Set<Int64> = []
                for _ in 0..<4 { connections.insert(try #require(try await node.send(["CLIENT", "ID"]).int)) }
                return (connections, try await node.connection().channel.eventLoop === loop)
            }.value
            #expect(connections.count == 1, "a caller on one loop sent over \(connections.count) connections")
            #expect(onItsLoop, "a caller on one loop sent over another loop's connection")
        }
        var connections: Set<Int64> = []
        for _ in 0..<4 { connections.insert(try #require(try await node.send(["CLIENT", "ID"]).int)) }
        #expect(connections.count == 2, "a caller on no loop did not take the connections in turn")
    }
}
