import Logging
import MCPSessionStorage
import Synchronization

/// The tool calls running on this instance: so a client's `notifications/cancelled` and
/// shutdown can stop them, and so other instances can tell one that is running from one whose
/// instance died.
///
/// A call outlives its HTTP response: a dropped stream does not stop it. A call still running
/// after ``CallLease/delay`` takes a lease on its stream in storage and renews it; if another
/// instance finds the lease unrenewed for the server's `callLeaseTimeout`, it ends the call with
/// an error (see `follow`), and this instance, when it next renews, stops the call.
final class RunningCalls: Sendable {
    private struct Key: Hashable {
        var session: SessionID
        var stream: StreamID
    }
    private struct Call {
        let task: Task<Void, Never>
        /// Shutdown stopped it: it answers ``RPCError/instanceStopped``.
        var stopping = false
    }
    private let running = Mutex<[Key: Call]>([:])
    private let storage: any SessionStorage
    private let instanceID: String
    private let lease: CallLease
    private let logger: Logger

    init(storage: any SessionStorage, instanceID: String, lease: CallLease, logger: Logger) {
        self.storage = storage
        self.instanceID = instanceID
        self.lease = lease
        self.logger = logger
    }

    /// How many calls are running here.
    var count: Int { running.withLock { $0.count } }

    /// The sessions with a call running here.
    var sessions: Set<SessionID> { running.withLock { Set($0.keys.map(\.session)) } }

    /// Runs `work` detached from the caller, keeping its lease, then hands its answer to
    /// `finish` to store and send, or `nil` if another instance ended the call meanwhile (and
    /// stored its answer). A call stopped by shutdown is answered with ``RPCError/instanceStopped``.
    func start(
        session: SessionID, stream: StreamID, requestID: JSONValue,
        work: @escaping @Sendable () async -> JSONValue, finish: @escaping @Sendable (JSONValue?) async -> Void
    ) {
        let key = Key(session: session, stream: stream)
        let keeper = LeaseKeeper(
            storage: storage, session: session, name: CallLease.name(for: stream), holder: instanceID, timing: lease, logger: logger)
        running.withLock { running in
            running[key] = Call(
                task: Task { [self] in
                    // The call and its lease as children: cancelling the call's task stops both.
                    var answer = await withTaskGroup(of: JSONValue?.self) { group in
                        group.addTask { await work() }
                        group.addTask {
                            await keeper.keep()
                            return nil
                        }
                        var answer: JSONValue?
                        while let result = await group.next() {
                            if let result {
                                answer = result  // the call ended: stop keeping its lease
                                group.cancelAll()
                            } else if await keeper.isLost {
                                group.cancelAll()  // another instance ended it: stop the call
                            }
                        }
                        return answer ?? OutgoingMessage.error(id: requestID, .instanceStopped)
                    }
                    if self.running.withLock({ $0[key]?.stopping ?? false }) { answer = OutgoingMessage.error(id: requestID, .instanceStopped) }
                    // Stored even when the call was cancelled (by the client, or shutdown): a task of
                    // its own does not inherit the cancellation that would abort the write.
                    // `.some`/`.none` spelled out: JSONValue is ExpressibleByNilLiteral, so a bare
                    // `nil` here would be the JSON null, and stored as the call's answer.
                    let final = answer
                    await Task { await finish(await keeper.release() ? .some(final) : .none) }.value
                    _ = self.running.withLock { $0.removeValue(forKey: key) }
                })
        }
    }

    /// Cancels a call at the client's request; it answers as cancelled.
    func cancel(session: SessionID, stream: StreamID) {
        running.withLock { $0[Key(session: session, stream: stream)] }?.task.cancel()
    }

    /// Stops every call (shutdown) and waits until each has stored its answer, or `timeout`.
    func stopAll(within timeout: Duration) async {
        let tasks = running.withLock { running in
            for key in running.keys { running[key]!.stopping = true }
            return running.values.map(\.task)
        }
        for task in tasks { task.cancel() }
        let deadline = ContinuousClock.now + timeout
        while count > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// How calls hold their leases: names, and timing.
struct CallLease: Sendable {
    /// How long a call runs before it takes a lease (shorter calls never write one).
    var delay: Duration
    /// How often a held lease is renewed.
    var renewal: Duration
    /// How long an unrenewed lease (or, before one is taken, a call with no new event) is
    /// trusted before the call counts as orphaned.
    var timeout: Duration

    init(timeout: Duration) {
        self.timeout = timeout
        self.renewal = timeout / 5
        self.delay = timeout / 5
    }

    /// The lease of the call answering on `stream`.
    static func name(for stream: StreamID) -> String { "call:" + stream.rawValue }

    /// The holder an instance writes when it ends a call whose instance stopped.
    static func endedHolder(by instanceID: String) -> String { "ended:" + instanceID }
}

/// Takes and renews one call's lease until cancelled, then releases it.
actor LeaseKeeper {
    private let storage: any SessionStorage
    private let session: SessionID
    private let name: String
    private let holder: String
    private let timing: CallLease
    private let logger: Logger
    private var held: Lease?
    private var lost = false

    init(storage: any SessionStorage, session: SessionID, name: String, holder: String, timing: CallLease, logger: Logger) {
        self.storage = storage
        self.session = session
        self.name = name
        self.holder = holder
        self.timing = timing
        self.logger = logger
    }

    /// Whether another instance took the lease: it judged this call orphaned, and answered it.
    var isLost: Bool { lost }

    /// Takes the lease after the delay and renews it until cancelled, or until another instance
    /// takes it (then ``isLost``).
    func keep() async {
        guard (try? await Task.sleep(for: timing.delay)) != nil else { return }
        while !Task.isCancelled {
            let next = held?.renewed ?? Lease(holder: holder, generation: 1)
            do {
                if try await storage.swapLease(name, in: session, expected: held, new: next) {
                    held = next
                } else {
                    lost = true
                    logger.warning(
                        "another instance ended this call as orphaned; stopping it", metadata: ["session": "\(session)", "lease": "\(name)"])
                    return
                }
            } catch {
                // Storage unreachable: try again at the next renewal; the lease may lapse.
                logger.debug("could not renew a call lease", metadata: ["error": "\(error)"])
            }
            guard (try? await Task.sleep(for: timing.renewal)) != nil else { return }
        }
    }

    /// Releases the lease (if one was taken). Returns whether this instance still owned the
    /// call, and so should store its answer.
    ///
    /// A renewal cancelled in flight (the call ended meanwhile) may have been written without
    /// being recorded in ``held``: the lease is still this call's as long as it names this
    /// holder, since another instance that ends the call writes its own holder.
    func release() async -> Bool {
        guard !lost else { return false }
        do {
            if let held, try await storage.swapLease(name, in: session, expected: held, new: nil) { return true }
            guard let current = try await storage.lease(name, in: session) else { return true }
            guard current.holder == holder else { return false }
            return try await storage.swapLease(name, in: session, expected: current, new: nil)
        } catch {
            // Unreachable: answer anyway; storing the answer will likely fail the same way.
            return true
        }
    }
}
