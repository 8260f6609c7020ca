import Foundation
import MCPSessionStorage
import MCPSessionStorageDynamoDB
import MCPSessionStorageRedis
import MCPSessionStorageTesting
import Testing

@Suite("DynamoDBSessionStorage", .enabled(if: DynamoDBTestEnvironment.dynamo.shouldRun, DynamoDBTestEnvironment.skipReason))
struct DynamoDBConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in try DynamoDBTestEnvironment.storage(policy: policy) }
    }

    @Test(
        "conformance of the tier over DynamoDB with a Redis bus",
        .enabled(if: DynamoDBTestEnvironment.redis.shouldRun, Comment(rawValue: DynamoDBTestEnvironment.redis.skipReason)),
        arguments: SessionStorageConformance.checks)
    func conformanceOfTheTier(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in
            let durable = try DynamoDBTestEnvironment.storage(policy: policy)
            let bus = try RedisChangeBus(
                configuration: try RedisSessionStorage.Configuration(url: DynamoDBTestEnvironment.redis.url),
                channel: DynamoDBTestEnvironment.channel(for: durable.configuration.table))
            DynamoDBTestEnvironment.keepRunning { await bus.run() }
            let tiered = TieredSessionStorage(durable: durable, bus: bus)
            for _ in 0..<500 where !tiered.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
            return tiered
        }
    }

    @Test("two instances on one table and a Redis bus: a write on one is read on the other")
    func twoInstances() async throws {
        try #require(DynamoDBTestEnvironment.redis.isReachable || DynamoDBTestEnvironment.redis.isCI, "Redis is needed")
        let table = DynamoDBTestEnvironment.freshTable()
        let channel = DynamoDBTestEnvironment.channel(for: table)
        var tiers: [TieredSessionStorage] = []
        for _ in 0..<2 {
            let bus = try RedisChangeBus(
                configuration: try RedisSessionStorage.Configuration(url: DynamoDBTestEnvironment.redis.url), channel: channel)
            DynamoDBTestEnvironment.keepRunning { await bus.run() }
            let tier = TieredSessionStorage(durable: try DynamoDBTestEnvironment.storage(table: table), bus: bus)
            for _ in 0..<500 where !tier.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
            tiers.append(tier)
        }
        let session = try await tiers[0].createSession()
        #expect(try await tiers[1].session(session.id)?.version == 1, "B caches the session")
        let version = try await tiers[0].setState("from A", forKey: "k", in: session.id)
        // currentSession confirms B's copy with the durable tier: it sees A's acknowledged write.
        let seen = try await tiers[1].currentSession(session.id)
        #expect(seen?.version == version)
        #expect(seen?.state["k"] == "from A")
    }

    @Test("a URL names the table, region, endpoint and creation; anything else is invalidInput")
    func urls() throws {
        let local = try DynamoDBSessionStorage.Configuration(url: "dynamodb://mcp-sessions?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A8000")
        #expect(local.table == "mcp-sessions")
        #expect(local.region == "eu-west-1")
        #expect(local.endpoint == "http://127.0.0.1:8000")
        #expect(local.resolvedEndpoint == "http://127.0.0.1:8000")
        #expect(!local.createTable)
        let aws = try DynamoDBSessionStorage.Configuration(url: "dynamodb://sessions?region=us-west-2&endpoint=http://localhost:4566&create=true")
        #expect(aws.endpoint == "http://localhost:4566")
        #expect(aws.createTable)
        #expect(
            try DynamoDBSessionStorage.Configuration(url: "dynamodb://sessions?region=ap-south-1").resolvedEndpoint
                == "https://dynamodb.ap-south-1.amazonaws.com")
        for bad in ["dynamo://t", "dynamodb://", "dynamodb://ab", "dynamodb://bad table", "dynamodb://t1?x=1", "dynamodb://tab?create=maybe"] {
            #expect(throws: SessionStorageError.self, "\(bad)") { try DynamoDBSessionStorage.Configuration(url: bad) }
        }
        #expect(throws: SessionStorageError.self) {
            _ = try DynamoDBSessionStorage(configuration: .init(table: "table", region: "us-east-1", endpoint: "ftp://x"))
        }
    }

    @Test("the declared limits fit a DynamoDB item, and a value at them is stored whole")
    func itemLimit() async throws {
        let storage = try DynamoDBTestEnvironment.storage()
        #expect(storage.policy.maxStateValueBytes <= 400 * 1024)
        #expect(storage.policy.maxEventBytes <= 400 * 1024)
        #expect(storage.policy.maxStateBytesPerSession == SessionPolicy().maxStateBytesPerSession, "state spans items: not cut to one item")
        let session = try await storage.createSession()
        // Past one item's size in total: three values near the item limit each.
        let big = JSONValue.string(String(repeating: "x", count: storage.policy.maxStateValueBytes - 2))
        for key in ["a", "b", "c"] { try await storage.setState(big, forKey: key, in: session.id) }
        let loaded = try #require(try await storage.session(session.id))
        #expect(loaded.state.count == 3)
        #expect(loaded.state["c"] == big)
    }
}
