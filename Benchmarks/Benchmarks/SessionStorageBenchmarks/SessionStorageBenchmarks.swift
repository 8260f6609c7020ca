import Benchmark
import Foundation
import MCPSessionStorage
import MCPSessionStorageSQLite

/// The operations every backend is measured on, each iteration one call:
/// get a session (3 state keys), set one state key, append one event, replay 100 events.
/// `scripts/bench` runs these and the C limit (`sqlite-c/loop.c`) in one go and prints ratios.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock],
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000
    )
    register("InMemory") { InMemorySessionStorage() }
    register("SQLite") {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mcp-bench-\(UUID().uuidString).db").path
        return try SQLiteSessionStorage(configuration: .init(path: path))
    }
    Benchmark.teardown = { await Background.stopAll() }
    registerPostgres()
    registerRedis()
    registerTiered()
}

/// A session with three state keys and, for replay, 201 events alternating over two streams
/// so replaying one stream after the first event returns 100.
struct Fixture: Sendable {
    let storage: any SessionStorage
    let id: SessionID
    let cursor: Int64

    static func make(_ storage: any SessionStorage, id: SessionID? = nil) async throws -> Fixture {
        let session = try await storage.createSession(
            id: id,
            NewSession(
                isInitialized: true, protocolVersion: "2025-06-18", clientInfo: ["name": "bench", "version": "1"],
                state: ["user": "ada", "counter": 41, "prefs": ["theme": "dark", "lang": "en"]]))
        // Two streams, so replaying stream 1 after its first event skips stream 2's 100.
        let streams = [try StreamID.request(1), try StreamID.request(2)]
        var first: Int64 = 0
        for index in 0..<201 {
            let event = try await storage.appendEvent(NewEvent(stream: streams[index % 2], data: payload(index)), to: session.id)
            if index == 0 { first = event.id }
        }
        return Fixture(storage: storage, id: session.id, cursor: first)
    }

    /// One operation, `times` times, as the benchmarks and pgbench's scripts define it.
    func perform(_ operation: Operation, times: Int) async throws {
        let stream = try StreamID.request(3)
        for index in 0..<times {
            switch operation {
            case .getSession: blackHole(try await storage.session(id))
            case .setState: blackHole(try await storage.setState(.int(Int64(index)), forKey: "counter", in: id))
            case .appendEvent: blackHole(try await storage.appendEvent(NewEvent(stream: stream, data: Fixture.payload(index)), to: id))
            case .replay:
                let events = try await storage.events(in: id, after: cursor)
                precondition(events.count == 100, "replay returned \(events.count) events")
                blackHole(events)
            }
        }
    }

    static func payload(_ index: Int) -> JSONValue {
        ["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "info", "data": .string("tick \(index)")]]
    }
}

func register(_ backend: String, _ make: @escaping @Sendable () async throws -> any SessionStorage) {
    let setup: @Sendable () async throws -> Fixture = { try await Fixture.make(try await make()) }

    for operation in Operation.allCases {
        Benchmark(
            "\(backend) \(operation.rawValue)",
            closure: { benchmark, fixture in
                try await fixture.perform(operation, times: benchmark.scaledIterations.count)
            }, setup: setup)
    }
}
