import Foundation
import Metrics
import MetricsTestKit
import Synchronization
import Testing

@testable import MCPSessionStorage

/// swift-metrics is bootstrapped once per process; each test tells its own tier apart by a
/// dimension, so tests running in parallel do not mix their counts.
enum TestMetricsSystem {
    static let metrics: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()
}

@Suite("Tiered metrics")
struct TieredMetricsTests {
    @Test("hits, misses, coalesced loads, invalidations and flushes are counted")
    func counters() async throws {
        let metrics = TestMetricsSystem.metrics
        let dimensions = [("test", UUID().uuidString)]
        var configuration = TieredSessionStorage.Configuration()
        configuration.metricsDimensions = dimensions
        let hub = InProcessChangeBus.Hub()
        let durable = CountingStorage(delay: .milliseconds(30))
        let tiered = TieredSessionStorage(durable: durable, front: configuration, bus: InProcessChangeBus(hub: hub, instanceID: "me"))
        try await waitUntil { tiered.isFrontEnabled }
        let other = InProcessChangeBus(hub: hub, instanceID: "other")

        let id = try await durable.createSession().id
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<5 { group.addTask { _ = try await tiered.session(id) } }  // 5 misses, 4 join the first
            try await group.waitForAll()
        }
        _ = try await tiered.session(id)  // a hit
        other.publish(.changed(id, version: 9))
        try await waitUntil { tiered.front.count == 0 }
        hub.bounce()
        try await waitUntil { ((try? metrics.expectCounter("mcp_session_front_flushes", dimensions).totalValue) ?? 0) >= 3 }

        #expect(try metrics.expectCounter("mcp_session_front_misses", dimensions).totalValue == 5)
        #expect(try metrics.expectCounter("mcp_session_front_coalesced_loads", dimensions).totalValue == 4)
        #expect(try metrics.expectCounter("mcp_session_front_hits", dimensions).totalValue == 1)
        #expect(try metrics.expectCounter("mcp_session_front_invalidations", dimensions).totalValue == 1)
        #expect(try metrics.expectTimer("mcp_session_durable_latency", dimensions).values.count == 1)
        #expect(durable.reads.load(ordering: .relaxed) == 1)
    }
}

@Suite("Cleanup service")
struct CleanupServiceTests {
    @Test("run() expires idle sessions on its interval until cancelled")
    func runLoop() async throws {
        var policy = SessionPolicy(sessionTTL: .zero)
        policy.cleanupInterval = .milliseconds(20)
        let storage = InMemorySessionStorage(configuration: .init(policy: policy))
        let expired = ExpiredIDs()
        let service = SessionCleanupService(storage: storage) { ids in expired.add(ids) }
        let id = try await storage.createSession().id
        let task = Task { try await service.run() }
        try await waitUntil { expired.contains(id) }
        #expect(try await storage.session(id) == nil)
        task.cancel()
        _ = try? await task.value
    }
}

final class ExpiredIDs: Sendable {
    private let ids = Mutex<Set<SessionID>>([])
    func add(_ new: [SessionID]) { ids.withLock { $0.formUnion(new) } }
    func contains(_ id: SessionID) -> Bool { ids.withLock { $0.contains(id) } }
}
