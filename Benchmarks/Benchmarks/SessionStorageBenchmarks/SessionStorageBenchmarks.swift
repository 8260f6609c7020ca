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
}

/// A session with three state keys and, for replay, 201 events alternating over two streams
/// so replaying one stream after the first event returns 100.
struct Fixture: Sendable {
    let storage: any SessionStorage
    let id: SessionID
    let cursor: Int64

    static func make(_ storage: any SessionStorage) async throws -> Fixture {
        let session = try await storage.createSession(NewSession(
            isInitialized: true, protocolVersion: "2025-06-18", clientInfo: ["name": "bench", "version": "1"],
            state: ["user": "ada", "counter": 41, "prefs": ["theme": "dark", "lang": "en"]]))
        let streams = [try StreamID.request(1), try StreamID.request(2)]
        var first: Int64 = 0
        for index in 0..<201 {
            let event = try await storage.appendEvent(NewEvent(stream: streams[index % 2], data: payload(index)), to: session.id)
            if index == 0 { first = event.id }
        }
        return Fixture(storage: storage, id: session.id, cursor: first)
    }

    static func payload(_ index: Int) -> JSONValue {
        ["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "info", "data": .string("tick \(index)")]]
    }
}

func register(_ backend: String, _ make: @escaping @Sendable () async throws -> any SessionStorage) {
    let setup: @Sendable () async throws -> Fixture = { try await Fixture.make(try await make()) }

    Benchmark("\(backend) get-session", closure: { benchmark, f in
        for _ in benchmark.scaledIterations { blackHole(try await f.storage.session(f.id)) }
    }, setup: setup)

    Benchmark("\(backend) set-state", closure: { benchmark, f in
        var n: Int64 = 0
        for _ in benchmark.scaledIterations {
            n += 1
            blackHole(try await f.storage.setState(.int(n), forKey: "counter", in: f.id))
        }
    }, setup: setup)

    Benchmark("\(backend) append-event", closure: { benchmark, f in
        let stream = try StreamID.request(3)
        for index in benchmark.scaledIterations {
            blackHole(try await f.storage.appendEvent(NewEvent(stream: stream, data: Fixture.payload(index)), to: f.id))
        }
    }, setup: setup)

    Benchmark("\(backend) replay-100", closure: { benchmark, f in
        for _ in benchmark.scaledIterations {
            let events = try await f.storage.events(in: f.id, after: f.cursor)
            precondition(events.count == 100, "replay returned \(events.count) events")
            blackHole(events)
        }
    }, setup: setup)
}
