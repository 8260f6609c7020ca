import Foundation
import MCPSessionStorage
import MCPSessionStorageDynamoDB
import Testing

@Suite("DynamoDB faults", .serialized, .enabled(if: DynamoDBTestEnvironment.dynamo.shouldRun, DynamoDBTestEnvironment.skipReason))
struct DynamoDBFaultTests {
    /// With retries, throttling and server errors are invisible to the caller; with retries
    /// turned off, the same faults fail the call. The second half shows the first half's
    /// success is the retry's doing, not the proxy letting requests through.
    @Test("throttling, a 500 and a transaction conflict are retried and the call succeeds", .timeLimit(.minutes(2)))
    func throttling() async throws {
        let table = DynamoDBTestEnvironment.freshTable()
        _ = try await DynamoDBTestEnvironment.storage(table: table).createSession()  // the table exists before the faults
        let faults = ["throttle", "500", "throttle", "conflict", "500"]
        let proxy = try await FaultProxy.start(upstream: DynamoDBTestEnvironment.dynamo.url, faults: faults)
        defer { proxy.stop() }
        let storage = try DynamoDBTestEnvironment.storage(table: table, endpoint: proxy.url)
        let session = try await storage.createSession()
        #expect(try await storage.setState("after faults", forKey: "k", in: session.id) == 2)
        #expect(try await storage.stateValue(forKey: "k", in: session.id) == "after faults")
        let stats = try await proxy.stats()
        #expect(stats["faulted"] == faults.count, "every fault was answered")
        #expect((stats["forwarded"] ?? 0) >= 3, "and the calls went on to moto")

        let strictProxy = try await FaultProxy.start(upstream: DynamoDBTestEnvironment.dynamo.url, faults: ["throttle"])

        defer { strictProxy.stop() }
        let strict = try DynamoDBTestEnvironment.storage(table: table, endpoint: strictProxy.url) { $0.retry.maxAttempts = 1 }
        await #expect { try await strict.session(session.id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
        #expect(try await strict.session(session.id)?.state["k"] == "after faults", "the next call, not faulted, works")
    }

    @Test("calls fail with unavailable while the server is down, and the same storage heals", .timeLimit(.minutes(2)))
    func outage() async throws {
        try await DynamoDBTestEnvironment.services("start", "dynamodb-faults")
        let table = DynamoDBTestEnvironment.freshTable()
        let storage = try DynamoDBTestEnvironment.storage(table: table, endpoint: DynamoDBTestEnvironment.faults.url) {
            $0.operationTimeout = .seconds(2)
        }
        let id = try await storage.createSession().id
        try await DynamoDBTestEnvironment.services("stop", "dynamodb-faults")
        do {
            let started = ContinuousClock.now
            await #expect { try await storage.setState(1, forKey: "k", in: id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
            await #expect { try await storage.session(id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
            #expect(ContinuousClock.now - started < .seconds(10), "within the operation timeout, not hanging")
        }
        // moto keeps its tables in memory: the restarted server is empty, and the storage must
        // work against it again (the table is created anew on the next call).
        try await DynamoDBTestEnvironment.services("start", "dynamodb-faults")
        var healed: SessionInfo?
        for _ in 0..<100 where healed == nil {
            healed = try? await storage.createSession()
            if healed == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let session = try #require(healed, "the same storage object works again")
        #expect(try await storage.setState(2, forKey: "k", in: session.id) == 2)
        #expect(try await storage.stateValue(forKey: "k", in: session.id) == 2)
    }

    @Test("a session with more events than one 1 MB page replays all of them, in order", .timeLimit(.minutes(3)))
    func paging() async throws {
        var policy = SessionPolicy()
        policy.maxEventsPerSession = 100
        let storage = try DynamoDBTestEnvironment.storage(policy: policy)
        let session = try await storage.createSession()
        let stream = try StreamID.request(1)
        let payload = JSONValue.string(String(repeating: "p", count: 100_000))
        var appended: [Int64] = []
        for index in 0..<25 {  // 2.5 MB: three pages at least
            let data: JSONValue = ["n": .int(Int64(index)), "payload": payload]
            appended.append(try await storage.appendEvent(NewEvent(stream: stream, data: data), to: session.id).id)
        }
        let replay = try await storage.events(in: session.id, after: appended[0])
        #expect(replay.map(\.id) == Array(appended.dropFirst()))
        #expect(replay.map { $0.data?[member: "n"] } == (1..<25).map { JSONValue.int(Int64($0)) })
        let whole = try await storage.events(in: session.id, stream: stream, after: 0, limit: nil)
        #expect(whole.count == 25)
        let recent = try await storage.recentEvents(in: session.id, limit: 100)
        #expect(recent.map(\.id) == appended)
        #expect(try await storage.eventCount() == 25)
    }
}
