import ClusterNodeDriver
import Foundation
import MCPSessionStorage
import MCPSessionStorageRedis
import Testing

/// Three `TieredClusterNode` processes over one Redis, telling each other what changed through
/// Redis pub/sub.
@Suite("Tiered instances over Redis", .serialized, .enabled(if: RedisTestEnvironment.redis.shouldRun, RedisTestEnvironment.skipReason))
struct RedisClusterBusTests {
    func instances(_ count: Int, mode: String = "attached") async throws -> (nodes: [ClusterNode], prefix: String, channel: String) {
        let prefix = RedisTestEnvironment.freshPrefix()
        let channel = "c" + prefix
        var nodes: [ClusterNode] = []
        for index in 0..<count {
            nodes.append(
                try await ClusterNode.start(
                    url: RedisTestEnvironment.redis.url, schema: prefix, channel: channel, instance: "\(prefix)-node\(index)", mode: mode))
        }
        return (nodes, prefix, channel)
    }

    @Test("a write on one instance is seen by the other two", arguments: ["attached", "attached:10", "standalone"])
    func propagation(mode: String) async throws {
        let (nodes, _, _) = try await instances(3, mode: mode)
        try await nodes[0].send("create s1")
        for node in nodes.dropFirst() {
            #expect(try await node.eventually("get-and-check-cached s1 k", "value none cached yes"))
        }
        #expect(try await nodes[0].send("set s1 k {\"n\":1}") == "ok 2")
        for node in nodes.dropFirst() {
            #expect(try await node.send("await-evicted s1 5000").hasPrefix("evicted"))
            #expect(try await node.send("get s1 k") == "value {\"n\":1}")
        }
    }

    @Test("killing the subscriber's connection (CLIENT KILL) flushes the front, and the instance recovers")
    func subscriberKilled() async throws {
        let (nodes, prefix, _) = try await instances(2)
        let (writer, reader) = (nodes[0], nodes[1])
        try await writer.send("create s1")
        try await writer.send("set s1 k 1")
        #expect(try await reader.eventually("get-and-check-cached s1 k", "value 1 cached yes"))

        // The reader's subscribed connection names itself after the instance; kill it.
        let name = RedisChangeBus.clientName("\(prefix)-node1")
        let clients = try await RedisTestEnvironment.cli(63790, ["CLIENT", "LIST", "TYPE", "pubsub"])
        let line = try #require(clients.split(separator: "\n").first { $0.contains("name=\(name) ") }, "the reader is subscribed")
        let id = try #require(line.split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3))
        #expect(line.contains("sub=1"))
        #expect(try await RedisTestEnvironment.cli(63790, ["CLIENT", "KILL", "ID", String(id)]).contains("1"))

        // The write lands while the reader may have no subscriber: its message is lost to it.
        try await writer.send("set s1 k 2")
        #expect(try await reader.eventually("get s1 k", "value 2"), "the reader served a value from before the outage")
        #expect(try await reader.eventually("front-enabled", "front-enabled true"))
        #expect(try await reader.eventually("get-and-check-cached s1 k", "value 2 cached yes"))
        try await writer.send("set s1 k 3")
        #expect(try await reader.send("await-evicted s1 5000").hasPrefix("evicted"))
        #expect(try await reader.send("get s1 k") == "value 3")
    }
}
