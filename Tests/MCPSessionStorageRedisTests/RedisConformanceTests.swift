import Foundation
import MCPSessionStorage
import MCPSessionStorageRedis
import MCPSessionStorageTesting
import Testing

@Suite("RedisSessionStorage", .enabled(if: RedisTestEnvironment.redis.shouldRun, RedisTestEnvironment.skipReason))
struct RedisConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in try RedisTestEnvironment.storage(policy: policy) }
    }

    @Test(
        "conformance of the storage and of the tier over it, with the bus and its messages inside the writes",
        arguments: SessionStorageConformance.checks)
    func conformanceWithBus(_ check: SessionStorageConformance.Check) async throws {
        for gap in [Duration.zero, .milliseconds(10)] {
            try await check.run { policy in
                let prefix = RedisTestEnvironment.freshPrefix()
                let changes = try ChangeEmitter(channel: "c" + prefix, minimumGap: gap)
                let durable = try RedisTestEnvironment.storage(policy: policy, prefix: prefix, changes: changes)
                let bus = try RedisChangeBus(configuration: durable.configuration, changes: changes)
                RedisTestEnvironment.keepRunning { await bus.run() }
                let tiered = TieredSessionStorage(durable: durable, bus: bus)
                for _ in 0..<500 where !tiered.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
                return tiered
            }
        }
    }

    @Test("a URL names the servers, the password and the database; anything else is invalidInput")
    func urls() throws {
        let plain = try RedisSessionStorage.Configuration(url: "redis://127.0.0.1:6380/2")
        #expect(plain.nodes == ["127.0.0.1:6380"])
        #expect(plain.database == 2)
        #expect(!plain.cluster)
        let secret = try RedisSessionStorage.Configuration(url: "redis://:s%40cret@cache")
        #expect(secret.password == "s@cret")
        #expect(secret.nodes == ["cache"])
        let cluster = try RedisSessionStorage.Configuration(url: "redis://a:7000,b:7001")
        #expect(cluster.cluster)
        #expect(try RedisSessionStorage.Configuration(url: "redis+cluster://a:7000").cluster)
        #expect(try RedisSessionStorage.Configuration(url: "redis://a?prefix=tenant1").keyPrefix == "tenant1")
        for bad in ["rediss://a", "redis://", "redis://a:port", "redis://a:0", "redis://a/x", "http://a", "redis://a?schema=x"] {
            #expect(throws: SessionStorageError.self, "\(bad)") { try RedisSessionStorage.Configuration(url: bad) }
        }
        #expect(throws: SessionStorageError.self) {
            var configuration = try RedisSessionStorage.Configuration(url: "redis://a")
            configuration.keyPrefix = "bad prefix"
            _ = try RedisSessionStorage(configuration: configuration)
        }
    }
}

/// The suites on the local Redis Cluster, one after the other: the slot migration moves a slot
/// and copies keys while it runs (`MIGRATE` holds both nodes), which the other suites' calls
/// would otherwise meet at random.
@Suite(
    "Redis Cluster", .serialized,
    .enabled(if: RedisTestEnvironment.cluster.shouldRun, Comment(rawValue: RedisTestEnvironment.cluster.skipReason)))
enum RedisClusterSuites {}

extension RedisClusterSuites {
    @Suite("RedisSessionStorage on Redis Cluster")
    struct RedisClusterConformanceTests {
        @Test("conformance", arguments: SessionStorageConformance.checks)
        func conformance(_ check: SessionStorageConformance.Check) async throws {
            try await check.run { policy in try RedisTestEnvironment.storage(policy: policy, url: RedisTestEnvironment.cluster.url) }
        }

        /// Found from outside: with the first seed down, the first write of a fresh storage went to
        /// that seed (no slot map yet) and failed until some read had loaded the map.
        @Test("a cluster reached through a list whose first node is down works from the first write")
        func firstSeedDown() async throws {
            let seeds = RedisTestEnvironment.cluster.url.replacingOccurrences(of: "redis+cluster://", with: "redis+cluster://127.0.0.1:1,")
            let storage = try RedisTestEnvironment.storage(url: seeds)
            let session = try await storage.createSession()
            #expect(try await storage.setState(1, forKey: "k", in: session.id) == 2)
            #expect(try await storage.stateValue(forKey: "k", in: session.id) == 1)
        }
    }
}
