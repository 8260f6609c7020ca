import MCPSessionStorage
import NIOCore
import Testing

@testable import MCPSessionStorageRedis

@Suite("Redis connections", .enabled(if: RedisTestEnvironment.redis.shouldRun, RedisTestEnvironment.skipReason))
struct RedisConnectionTests {
    @Test("a connection sets TCP_NODELAY at the TCP level (as a socket-level option it is SO_DEBUG, refused in containers)")
    func noDelay() async throws {
        let configuration = try RedisSessionStorage.Configuration(url: RedisTestEnvironment.redis.url)
        let connection = try await RedisConnection.connect(
            to: try #require(try configuration.validated().first), password: configuration.password, database: configuration.database,
            connectTimeout: .seconds(2), silenceLimit: .seconds(2))
        defer { connection.close() }
        let noDelay = try await connection.channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
        #expect(noDelay != 0, "Nagle's algorithm still delays small writes")
        #expect(try await connection.send(["PING"]).string == "PONG")
    }
}
