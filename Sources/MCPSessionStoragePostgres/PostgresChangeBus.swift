import Foundation
import Logging
import MCPSessionStorage
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A ``ChangeBus`` over PostgreSQL LISTEN/NOTIFY.
///
/// It LISTENs on one dedicated connection, and reconnects with exponential backoff (100 ms up
/// to 5 s) when that connection drops, reporting `disconnected` and then `connected` so the
/// tiered storage flushes its front.
///
/// Two ways to send:
/// - **Attached** (`init(attachedTo:)`, when the durable tier is the same database): every write
///   of the ``PostgresSessionStorage`` carries its NOTIFY inside its own statement, so the
///   notification is sent if and only if the write commits, with no extra round trip.
/// - **Standalone** (`init(configuration:)`): `publish` queues the change; one sender drains the
///   queue, merges what it can (``SessionChange/merging(_:)``), and sends it in as few NOTIFYs
///   as fit 7 000 bytes each, numbered so receivers see any loss.
///
/// Run it as a `Service` (it runs the listener, and in standalone mode the sender).
public final class PostgresChangeBus: ChangeBus, Service {
    public let instanceID: String
    public let changesEmittedByDurableWrites: Bool
    /// The channel LISTENed and NOTIFYed on.
    public let channel: String
    /// One connection, leased for as long as it listens.
    private let listener: PostgresClient
    private let publisher: PostgresClient?
    private let logger: Logger
    private let stream: AsyncStream<BusSignal>
    private let continuation: AsyncStream<BusSignal>.Continuation
    private let queue = Mutex<[SessionChange]>([])
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let sequence = Mutex<UInt64>(0)

    /// The shortest time between two NOTIFYs of the standalone sender.
    public let minimumGap: Duration

    /// The largest NOTIFY payload sent (PostgreSQL's limit is 8 000 bytes).
    static let maxPayload = 7_000

    /// The most changes the standalone sender holds while it cannot send.
    static let maxQueued = 100_000

    /// A bus whose changes are emitted by `storage`'s own write statements.
    public convenience init(attachedTo storage: PostgresSessionStorage, channel: String = "mcp_session_changes", instanceID: String = UUID().uuidString, logger: Logger = Logger(label: "mcp.session.bus")) throws(SessionStorageError) {
        try self.init(connection: storage.configuration, channel: channel, instanceID: instanceID, attached: true, minimumGap: .zero, logger: logger)
        storage.emitChanges(on: channel, origin: instanceID)
    }

    /// A bus that sends its own NOTIFYs, for a durable tier that is not this database.
    /// - Parameter minimumGap: The shortest time between two NOTIFYs (default 10 ms). A change
    ///   made when the bus is idle goes at once; under load, changes wait up to this long and
    ///   travel together. Every NOTIFY costs a transaction on the sender and a wake-up of every
    ///   instance's listener, so the gap buys write throughput with staleness: three instances
    ///   saturating one database wrote 0.64–0.75x of their bus-off rate at 2 ms, 0.89–0.98x at
    ///   10 ms and 0.96–1.04x at 50 ms (`scripts/bench Cluster`).
    public convenience init(
        configuration: PostgresSessionStorage.Configuration, channel: String = "mcp_session_changes", instanceID: String = UUID().uuidString,
        minimumGap: Duration = .milliseconds(10), logger: Logger = Logger(label: "mcp.session.bus")
    ) throws(SessionStorageError) {
        try self.init(connection: configuration, channel: channel, instanceID: instanceID, attached: false, minimumGap: minimumGap, logger: logger)
    }

    private init(
        connection configuration: PostgresSessionStorage.Configuration, channel: String, instanceID: String, attached: Bool,
        minimumGap: Duration, logger: Logger
    ) throws(SessionStorageError) {
        self.minimumGap = minimumGap
        try PostgresSchema.checkIdentifier(channel)
        guard !instanceID.contains("|"), !instanceID.contains("\n") else {
            throw SessionStorageError(.invalidInput, "instance id must not contain '|' or a line break")
        }
        self.instanceID = instanceID
        self.channel = channel
        self.changesEmittedByDurableWrites = attached
        self.logger = logger
        var listening = try configuration.clientConfiguration()
        listening.options.minimumConnections = 0
        listening.options.maximumConnections = 1
        listening.options.keepAliveBehavior = nil
        // So operators (and the tests) can tell each instance's listener apart in pg_stat_activity.
        listening.options.additionalStartupParameters.append(("application_name", "mcp-bus-\(instanceID)"))
        listener = PostgresClient(configuration: listening, backgroundLogger: logger)
        if attached {
            publisher = nil
        } else {
            var publishing = try configuration.clientConfiguration()
            publishing.options.maximumConnections = 1
            publisher = PostgresClient(configuration: publishing, backgroundLogger: logger)
        }
        (stream, continuation) = AsyncStream.makeStream(of: BusSignal.self)
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func signals() -> AsyncStream<BusSignal> { stream }

    public func publish(_ change: SessionChange) async {
        guard publisher != nil else { return }
        let dropped = queue.withLock { queue -> Int in
            // While the database is unreachable nothing drains the queue. Past the cap its
            // changes are dropped, and their numbers skipped so that receivers flush.
            guard queue.count >= Self.maxQueued else {
                queue.append(change)
                return 0
            }
            defer { queue = [change] }
            return queue.count
        }
        if dropped > 0 {
            sequence.withLock { $0 += UInt64(dropped) }
            logger.warning("change bus queue full; dropped changes, receivers will flush", metadata: ["dropped": "\(dropped)"])
        }
        wake.yield()
    }

    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listener.run() }
            group.addTask { await self.listen() }
            if let publisher {
                group.addTask { await publisher.run() }
                // Ending the wake-ups ends the sender; a plain stream, because
                // `cancelOnGracefulShutdown()` costs a thread hop per element.
                group.addTask { await withGracefulShutdownHandler { await self.send(with: publisher) } onGracefulShutdown: { self.wake.finish() } }
            }
        }
        continuation.finish()
    }

    // MARK: Listening

    private func listen() async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let attempt = ContinuousClock.now
            do {
                try await cancelWhenGracefulShutdown {
                    try await self.listener.withConnection { connection in
                        try await connection.listen(on: self.channel) { notifications in
                            self.continuation.yield(.connected)
                            for try await notification in notifications {
                                self.deliver(notification.payload)
                            }
                        }
                    }
                }
            } catch {
                logger.warning("change bus connection lost; flushing and reconnecting", metadata: ["error": "\(error)"])
            }
            continuation.yield(.disconnected)
            // Back off only while reconnecting fails fast; a connection that listened for a
            // while starts again from the shortest wait.
            let lasted = ContinuousClock.now - attempt
            backoff = lasted > .seconds(10) ? .milliseconds(100) : min(backoff * 2, .seconds(5))
            try? await Task.sleep(for: backoff)
        }
    }

    private func deliver(_ payload: String) {
        // Every instance hears its own NOTIFYs too: those lines are skipped before decoding.
        let own = "|\(instanceID)|"
        for line in payload.split(separator: "\n") {
            if line.dropFirst().hasPrefix(own) { continue }
            guard let message = ChangeMessageText.decode(line) else {
                logger.debug("ignoring a malformed change message", metadata: ["payload": "\(line.prefix(200))"])
                continue
            }
            continuation.yield(.message(message))
        }
    }

    // MARK: Sending (standalone)

    /// Drains the queue whenever woken: changes queued while a NOTIFY is in flight, or within
    /// `minimumGap` of the last one, go out together in the next. A change arriving when the
    /// bus is idle goes at once, so the gap costs latency only under load.
    private func send(with client: PostgresClient) async {
        // One connection held for as long as it works: no pool lease per NOTIFY.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await client.withConnection { connection in
                    var lastSent = ContinuousClock.now - self.minimumGap
                    for await _ in self.wakes {
                        // A sleep, even one already over, suspends; skipping it saves a thread hop.
                        if ContinuousClock.now < lastSent + self.minimumGap { try? await Task.sleep(until: lastSent + self.minimumGap) }
                        lastSent = ContinuousClock.now
                        let changes = SessionChange.merging(self.queue.withLock { queue in
                            defer { queue.removeAll(keepingCapacity: true) }
                            return queue
                        })
                        for payload in self.payloads(for: changes) {
                            // A failure loses this batch: the receivers see the hole in the
                            // sequence and flush. The next batch goes on a new connection.
                            for try await _ in try await connection.execute(Notify(channel: self.channel, payload: payload), logger: self.logger) {}
                        }
                    }
                }
                return
            } catch {
                logger.warning("could not send change notifications", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Numbers the changes and packs them into payloads of at most `maxPayload` bytes.
    func payloads(for changes: [SessionChange]) -> [String] {
        var payloads: [String] = []
        var current = ""
        for change in changes {
            let number = sequence.withLock { value -> UInt64 in
                value += 1
                return value
            }
            let line = ChangeMessageText.encode(ChangeMessage(origin: instanceID, sequence: number, change: change))
            if !current.isEmpty, current.utf8.count + 1 + line.utf8.count > Self.maxPayload {
                payloads.append(current)
                current = ""
            }
            current += current.isEmpty ? line : "\n" + line
        }
        if !current.isEmpty { payloads.append(current) }
        return payloads
    }
}
