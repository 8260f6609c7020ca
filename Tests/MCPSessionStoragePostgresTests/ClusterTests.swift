import ClusterNodeDriver
import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageTesting
import PostgresNIO
import Testing

@Suite("Tiered cluster over PostgreSQL", .serialized, .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct ClusterTests {
    func cluster(_ count: Int, mode: String = "attached") async throws -> (nodes: [ClusterNode], schema: String, channel: String) {
        let schema = PostgresTestEnvironment.freshSchema()
        let channel = "c" + schema
        // Instance names unique to the test, so its listeners can be told apart in pg_stat_activity.
        var nodes: [ClusterNode] = []
        for index in 0..<count {
            nodes.append(
                try await ClusterNode.start(
                    url: PostgresTestEnvironment.url, schema: schema, channel: channel, instance: "\(schema)-node\(index)", mode: mode))
        }
        return (nodes, schema, channel)
    }

    @Test("a write on one instance is seen by the other two", arguments: ["attached", "attached:10", "standalone"])
    func propagation(mode: String) async throws {
        let (nodes, _, _) = try await cluster(3, mode: mode)
        try await nodes[0].send("create s1")
        for node in nodes.dropFirst() {
            // A load that overlaps the create's own notification is (rightly) not cached.
            #expect(try await node.eventually("get-and-check-cached s1 k", "value none cached yes"))
        }
        #expect(try await nodes[0].send("set s1 k {\"n\":1}") == "ok 2")
        for node in nodes.dropFirst() {
            #expect(try await node.send("await-evicted s1 5000").hasPrefix("evicted"))
            #expect(try await node.send("get s1 k") == "value {\"n\":1}")
        }
    }

    @Test("killing the listener's backend flushes the front, and the instance recovers")
    func listenerKilled() async throws {
        let (nodes, schema, _) = try await cluster(2)
        let (writer, reader) = (nodes[0], nodes[1])
        try await writer.send("create s1")
        try await writer.send("set s1 k 1")
        #expect(try await reader.eventually("get-and-check-cached s1 k", "value 1 cached yes"))

        let admin = try PostgresTestEnvironment.storage(schema: schema)
        let killed = try await admin.client.query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = \("mcp-bus-\(schema)-node1")")
        for try await count in killed.decode(Int64.self) { #expect(count == 1) }

        // The write lands while the reader has no listener: its notification is lost to it.
        try await writer.send("set s1 k 2")
        #expect(try await reader.eventually("get s1 k", "value 2"), "the reader served a value from before the outage")

        // Listening again (front back on), later writes invalidate as before.
        #expect(try await reader.eventually("front-enabled", "front-enabled true"))
        #expect(try await reader.eventually("get-and-check-cached s1 k", "value 2 cached yes"))
        try await writer.send("set s1 k 3")
        #expect(try await reader.send("await-evicted s1 5000").hasPrefix("evicted"))
        #expect(try await reader.send("get s1 k") == "value 3")
    }

    @Test("a gap in an origin's sequence flushes the front")
    func sequenceGap() async throws {
        let (nodes, schema, channel) = try await cluster(1)
        let node = nodes[0]
        try await node.send("create s1")
        try await node.send("create s2")
        #expect(try await node.eventually("get-and-check-cached s1 k", "value none cached yes"))
        #expect(try await node.eventually("get-and-check-cached s2 k", "value none cached yes"))
        #expect(try await node.send("front") == "front 2 true")
        let admin = try PostgresTestEnvironment.storage(schema: schema)
        // A foreign origin's messages 1 and 3 about a third session: message 2 was "lost".
        for sequence in [1, 3] {
            try await admin.client.query("SELECT pg_notify(\(channel), \("c|other|\(sequence)|5|s3"))")
        }
        #expect(try await node.eventually("front", "front 0 true"))
    }
}

@Suite("Tiered over PostgreSQL", .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct TieredPostgresConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in TieredSessionStorage(durable: try await PostgresTestEnvironment.migratedStorage(policy: policy)) }
    }
}

@Suite("PostgreSQL with an attached bus", .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct AttachedBusConformanceTests {
    /// Every write then runs its NOTIFY variant; the contract must hold all the same.
    @Test("conformance of the storage and of the tier over it", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in
            // Nobody listens on this channel: the statements run, the messages go nowhere.
            try await PostgresTestEnvironment.migratedStorage(policy: policy, changes: try ChangeEmitter(channel: "conformance_unheard"))
        }
        // With a gap, most writes queue their changes after committing instead.
        for gap in [Duration.zero, .milliseconds(10)] {
            try await check.run { policy in
                let schema = PostgresTestEnvironment.freshSchema()
                let changes = try ChangeEmitter(channel: "c" + schema, minimumGap: gap)
                let durable = try await PostgresTestEnvironment.migratedStorage(policy: policy, schema: schema, changes: changes)
                let bus = try PostgresChangeBus(configuration: durable.configuration, changes: changes)
                let tiered = TieredSessionStorage(durable: durable, bus: bus)
                PostgresTestEnvironment.keepRunning { await bus.run() }
                for _ in 0..<500 where !tiered.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
                return tiered
            }
        }
    }
}

@Suite("Batched writes and the attached bus", .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct BatchedNotifyTests {
    /// Batches send their rows' changes several to a NOTIFY; each must reach the other instance.
    /// With a gap, most of them are queued after their commits and go with a later write's
    /// NOTIFY or the bus's own.
    @Test("every change of concurrent, batched writes reaches the other instance", .timeLimit(.minutes(1)), arguments: [0, 10])
    func batchedChangesArrive(gapMilliseconds: Int) async throws {
        let schema = PostgresTestEnvironment.freshSchema()
        func instance(_ name: String) async throws -> TieredSessionStorage {
            let changes = try ChangeEmitter(instanceID: name, channel: "c" + schema, minimumGap: .milliseconds(gapMilliseconds))
            let durable = try PostgresTestEnvironment.storage(schema: schema, changes: changes)
            let bus = try PostgresChangeBus(configuration: durable.configuration, changes: changes)
            var configuration = TieredSessionStorage.Configuration()
            configuration.maxAge = .seconds(3600)  // only the bus can drop b's copies in time
            let tiered = TieredSessionStorage(durable: durable, front: configuration, bus: bus)
            PostgresTestEnvironment.keepRunning { await bus.run() }
            while !tiered.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
            return tiered
        }
        let a = try await instance("a")
        let b = try await instance("b")
        var sessions: [SessionID] = []
        for _ in 0..<40 { sessions.append(try await a.createSession().id) }
        for id in sessions { _ = try await b.session(id) }  // b caches all 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in sessions {
                group.addTask {
                    try await a.setState("new", forKey: "k", in: id)
                    _ = try await a.appendEvent(NewEvent(stream: .standalone, data: 1), to: id)
                }
            }
            try await group.waitForAll()
        }
        // Each session's change drops b's copy; b then reads the new value.
        while sessions.contains(where: { b.isCached($0) }) { try await Task.sleep(for: .milliseconds(5)) }
        for id in sessions { #expect(try await b.stateValue(forKey: "k", in: id) == "new") }
    }
}
