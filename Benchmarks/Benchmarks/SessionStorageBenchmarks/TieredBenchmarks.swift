import Benchmark
import Foundation
import MCPSessionStorage
import MCPSessionStoragePostgres
import Synchronization

/// The tiered layer against its limits: a front hit beside a bare `Mutex`-guarded dictionary
/// lookup (the limit for an in-process read) and beside the same read on PostgreSQL; a write
/// through the tier (NOTIFY included) beside the bare PostgreSQL write.
func registerTiered() {
    let url = ProcessInfo.processInfo.environment["MCP_POSTGRES_URL"] ?? "postgres://mcp:mcp@127.0.0.1:54329/mcp_sessions"

    Benchmark(
        "Mutex dictionary get",
        closure: { (benchmark: Benchmark, fixture: DictionaryFixture) in
            for _ in benchmark.scaledIterations { blackHole(fixture.dictionary.withLock { $0[fixture.id] }) }
        },
        setup: { () async throws -> DictionaryFixture in
            let session = SessionInfo(id: .generate(), state: ["user": "ada", "counter": 41], version: 1)
            return DictionaryFixture(id: session.id, dictionary: Mutex([session.id: session]))
        })

    Benchmark(
        "Tiered front-hit get-session",
        closure: { benchmark, fixture in
            try await fixture.perform(.getSession, times: benchmark.scaledIterations.count)
        },
        setup: {
            let durable = try await PostgresBench.storage(url: url, schema: "bench_tiered_hit", connections: 1)
            let tiered = TieredSessionStorage(durable: durable)
            let fixture = try await Fixture.make(tiered)
            _ = try await tiered.session(fixture.id)
            return fixture
        })

    // The reference for the writes below: the same write on the bare storage. Benchmarks run in
    // name order, so this one runs among them rather than minutes before, with PostgreSQL's
    // checkpoints and the machine's drift in between.
    Benchmark(
        "Tiered set-state c1 bare storage (reference)",
        closure: { benchmark, fixture in
            try await fixture.perform(.setState, times: benchmark.scaledIterations.count)
        },
        setup: {
            try await Fixture.make(try await PostgresBench.storage(url: url, schema: "bench_tiered_set_bare", connections: 1))
        })

    // The buses: NOTIFY inside each write (atomic), inside writes at least 10 ms apart with
    // batched NOTIFYs between, and batched NOTIFYs after the commits.
    let buses = [
        ("Tiered set-state c1", "bench_tiered_set", Duration?.some(.zero)),
        ("Tiered set-state c1 attached bus 10 ms gap", "bench_tiered_set_gap", .milliseconds(10)),
        ("Tiered set-state c1 batched bus", "bench_tiered_set_batched", nil),
    ]
    for (name, schema, attachedGap) in buses {
        Benchmark(
            name,
            closure: { benchmark, fixture in
                try await fixture.perform(.setState, times: benchmark.scaledIterations.count)
            },
            setup: {
                let changes = try attachedGap.map { try ChangeEmitter(channel: schema, minimumGap: $0) }
                let durable = try await PostgresBench.storage(url: url, schema: schema, connections: 1, changes: changes)
                let bus =
                    try changes.map { try PostgresChangeBus(configuration: durable.configuration, changes: $0) }
                    ?? PostgresChangeBus(configuration: durable.configuration, channel: schema)
                let tiered = TieredSessionStorage(durable: durable, bus: bus)
                Background.run("PostgresChangeBus.run (\(schema))") { await bus.run() }
                while !tiered.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
                return try await Fixture.make(tiered)
            })
    }
}

final class DictionaryFixture: Sendable {
    let id: SessionID
    let dictionary: Mutex<[SessionID: SessionInfo]>

    init(id: SessionID, dictionary: consuming Mutex<[SessionID: SessionInfo]>) {
        self.id = id
        self.dictionary = dictionary
    }
}
