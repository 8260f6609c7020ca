import Foundation
import MCPSessionStorage
import MCPSessionStorageRedis
import Synchronization
import Testing

@testable import MCPSessionStorageRedis

/// Redis Cluster moving a slot (`CLUSTER SETSLOT … MIGRATING/IMPORTING`, `MIGRATE`, `SETSLOT …
/// NODE`) while sessions in it are written: the storage follows `ASK` and `MOVED`, waits out
/// `TRYAGAIN`, and loses nothing.
extension RedisClusterSuites {
    @Suite("Redis Cluster slot migration")
    struct RedisClusterSlotTests {
        static let ports = [63800, 63801, 63802]

        /// The node id and port serving `slot`.
        static func owner(of slot: Int) async throws -> (id: String, port: Int) {
            let nodes = try await RedisTestEnvironment.cli(ports[0], ["CLUSTER", "NODES"]).split(separator: "\n")
            for line in nodes {
                let fields = line.split(separator: " ")
                guard fields.count >= 9, fields[2].contains("master") else { continue }
                let port = Int(fields[1].split(separator: ":")[1].split(separator: "@")[0]) ?? 0
                for range in fields[8...] {
                    let bounds = range.split(separator: "-").compactMap { Int($0) }
                    if bounds.count == 2 && (bounds[0]...bounds[1]).contains(slot) || bounds.count == 1 && bounds[0] == slot {
                        return (String(fields[0]), port)
                    }
                }
            }
            throw SessionStorageError(.unavailable, "no owner found for slot \(slot)")
        }

        static func nodeID(_ port: Int) async throws -> String {
            try await RedisTestEnvironment.cli(port, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        @Test("a slot moved during writes loses nothing", .timeLimit(.minutes(2)))
        func migration() async throws {
            let prefix = RedisTestEnvironment.freshPrefix()
            let storage = try RedisTestEnvironment.storage(prefix: prefix, url: RedisTestEnvironment.cluster.url)
            var ids: [SessionID] = []
            for _ in 0..<12 { ids.append(try await storage.createSession().id) }
            let moving = ids[0]
            let slot = RedisSlots.slot(of: storage.keys.session(moving)[0])
            let source = try await Self.owner(of: slot)
            let targetPort = Self.ports.first { $0 != source.port }!
            let target = try await Self.nodeID(targetPort)

            // Writers on every session, the moving one among them, for the whole migration.
            let acknowledged = Shared<[SessionID: Int64]>([:])
            let done = Shared(false)
            let writers = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for id in ids {
                        group.addTask {
                            var n: Int64 = 0
                            while !done.current {
                                n += 1
                                try await storage.setState(.int(n), forKey: "n", in: id)
                                _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: .int(n)), to: id)
                                acknowledged.withLock { $0[id] = n }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            try await RedisTestEnvironment.cli(targetPort, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id])
            try await RedisTestEnvironment.cli(source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target])
            // Keys move in batches, with writes landing between them: ASK and TRYAGAIN meanwhile.
            while true {
                let keys = try await RedisTestEnvironment.cli(source.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), "2"])
                    .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
                if keys.isEmpty { break }
                try await RedisTestEnvironment.cli(source.port, ["MIGRATE", "127.0.0.1", String(targetPort), "", "0", "5000", "KEYS"] + keys)
                try await Task.sleep(for: .milliseconds(50))
            }
            for port in Self.ports { try await RedisTestEnvironment.cli(port, ["CLUSTER", "SETSLOT", String(slot), "NODE", target]) }
            try await Task.sleep(for: .milliseconds(300))
            done.withLock { $0 = true }
            try await writers.value

            #expect(try await Self.owner(of: slot).port == targetPort, "the slot moved")
            for (id, n) in acknowledged.withLock({ $0 }) {
                let session = try #require(try await storage.session(id))
                #expect(session.state["n"] == .int(n), "session \(id): the last acknowledged value")
                let events = try await storage.recentEvents(in: id, limit: 1)
                #expect(events.last?.data == .int(n), "session \(id): the last acknowledged event")
            }
            #expect(acknowledged.withLock { $0[moving] ?? 0 } > 0, "the moving session was written during the move")
        }
    }
}
