import Logging
import MCPSessionStorage
import Synchronization
import Testing

@testable import MCPSessionServer

/// How a running call's lease ends, found by the fault harness (Docs/Faults.md): a call that
/// finished just as its lease was being renewed stored JSON `null` as its answer, and another
/// instance answered it 5 seconds later with "the instance stopped".
@Suite("Call leases")
struct CallLeaseTests {
    let timing = CallLease(timeout: .milliseconds(500))

    func session(in storage: InMemorySessionStorage) async throws -> SessionID {
        try await storage.createSession().id
    }

    /// Waits until the call's lease exists, and returns it.
    func takenLease(_ name: String, in id: SessionID, of storage: InMemorySessionStorage) async throws -> Lease {
        for _ in 0..<200 {
            if let lease = try await storage.lease(name, in: id) { return lease }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("the call never took its lease")
        throw CancellationError()
    }

    @Test("a renewal written but not recorded (cancelled in flight) still lets the call release its lease and answer")
    func unrecordedRenewal() async throws {
        let storage = InMemorySessionStorage()
        let id = try await session(in: storage)
        let name = CallLease.name(for: .standalone)
        let keeper = LeaseKeeper(storage: storage, session: id, name: name, holder: "i1", timing: timing, logger: Logger(label: "test"))
        let keeping = Task { await keeper.keep() }
        let lease = try await takenLease(name, in: id, of: storage)
        // What a renewal cancelled after PostgreSQL committed it leaves: a newer generation the keeper never saw.
        keeping.cancel()
        await keeping.value
        let current = try #require(try await storage.lease(name, in: id))
        #expect(current.holder == lease.holder)
        #expect(try await storage.swapLease(name, in: id, expected: current, new: current.renewed))

        #expect(await keeper.release(), "the lease still names this instance: the call is still its own")
        #expect(try await storage.lease(name, in: id) == nil)
    }

    @Test("a lease another instance took is not released, and the call hands on no answer (nil, not JSON null)")
    func takenOver() async throws {
        let storage = InMemorySessionStorage()
        let id = try await session(in: storage)
        let stream = try StreamID.request(.int(7))
        let calls = RunningCalls(storage: storage, instanceID: "i1", lease: timing, logger: Logger(label: "test"))
        let answers = Mutex<[JSONValue?]>([])
        let done = AsyncStream.makeStream(of: Void.self)
        calls.start(
            session: id, stream: stream, requestID: .int(7),
            work: {
                try? await Task.sleep(for: .seconds(5))
                return ["result": "done"]
            },
            finish: { answer in
                answers.withLock { $0.append(answer) }
                done.continuation.finish()
            })
        // Another instance judged the call orphaned and ended it.
        let lease = try await takenLease(CallLease.name(for: stream), in: id, of: storage)
        let ended = Lease(holder: CallLease.endedHolder(by: "i2"), generation: lease.generation + 1)
        #expect(try await storage.swapLease(CallLease.name(for: stream), in: id, expected: lease, new: ended))
        for await _ in done.stream {}
        let answer = try #require(answers.withLock { $0 }.first)
        if case .some(let value) = answer { Issue.record("the call handed on \(value) as its answer") }
        #expect(try await storage.lease(CallLease.name(for: stream), in: id) == ended)
    }
}
