@_spi(Backend) import MCPSessionStorage
import Testing

@Suite("Deadline watchdog")
struct DeadlineWatchdogTests {
    @Test("a result within the deadline comes back as it is")
    func result() async throws {
        let watchdog = DeadlineWatchdog(resolution: .milliseconds(10))
        #expect(try await watchdog.run(timeout: .seconds(5)) { 42 } == 42)
        await #expect(throws: SessionStorageError.self) {
            try await watchdog.run(timeout: .seconds(5)) { () async throws -> Int in throw SessionStorageError(.corrupted, "x") }
        }
    }

    @Test("an operation that ignores cancellation still answers the caller at the deadline")
    func deadlineHolds() async throws {
        let watchdog = DeadlineWatchdog(resolution: .milliseconds(10))
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: TimeoutError.self) {
            try await watchdog.run(timeout: .milliseconds(100)) {
                // Never finishes, whatever happens to its task (an unsafe continuation: a checked
                // one would print a misuse warning into the test log when it is dropped).
                await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
            }
        }
        #expect(clock.now - started < .seconds(5), "the caller waited for the operation instead of the deadline")
    }

    @Test("cancelling the caller answers it at once")
    func callerCancelled() async throws {
        let watchdog = DeadlineWatchdog(resolution: .milliseconds(10))
        let caller = Task {
            try await watchdog.run(timeout: .seconds(60)) {
                await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }
}
