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
/// Three ways to send:
/// - **Attached** (`init(attachedTo:)`, when the durable tier is the same database): every write
///   of the ``PostgresSessionStorage`` carries its NOTIFY inside its own statement, so the
///   notification is sent if and only if the write commits, with no extra round trip.
/// - **Attached with a gap** (`init(attachedTo:minimumGap:)`): a write carries its NOTIFY when
///   the bus has been quiet for the gap, so an idle cluster hears of it as fast as above; under
///   load, changes wait for the next such write, or the bus's own NOTIFY, at most the gap.
/// - **Standalone** (`init(configuration:)`): `publish` queues the change; one sender drains the
///   queue, merges what it can (``SessionChange/merging(_:)``), and sends it in as few NOTIFYs
///   as fit 7 000 bytes each.
///
/// Changes sent after their commits are numbered, so receivers see any that are lost.
/// Run it as a `Service` (it runs the listener, and the sender when there is one).
public final class PostgresChangeBus: ChangeBus, Service {
    public let instanceID: String
    public var changesEmittedByDurableWrites: Bool { emitter.attached }
    /// The channel LISTENed and NOTIFYed on.
    public let channel: String
    /// One connection, leased for as long as it listens.
    private let listener: PostgresClient
    private let publisher: PostgresClient?
    private let logger: Logger
    private let stream: AsyncStream<BusSignal>
    private let continuation: AsyncStream<BusSignal>.Continuation
    let emitter: ChangeEmitter

    /// The shortest time between two NOTIFYs sent after their commits.
    public var minimumGap: Duration { emitter.minimumGap }

    /// A bus whose changes are emitted by `storage`'s own write statements.
    /// - Parameter minimumGap: Zero (the default): every write carries its NOTIFY, sent if and
    ///   only if it commits. NOTIFY takes a database-wide lock at commit, so this costs every
    ///   write: 1.14–1.45x a bare write, and three instances saturating one database wrote
    ///   0.64–0.73x of their bus-off rate (`scripts/bench Cluster`). Above zero: a write carries
    ///   its NOTIFY (and the changes queued before it) only when none was sent for this long;
    ///   the others are sent after their commits, at most this much later, and would be lost if
    ///   the process died in between (other instances then hold them until
    ///   ``TieredSessionStorage/Configuration/maxAge``). At 10 ms: 0.95–1.09x a bare write,
    ///   0.89–1.01x of the bus-off rate.
    public convenience init(
        attachedTo storage: PostgresSessionStorage, channel: String = "mcp_session_changes", instanceID: String = UUID().uuidString,
        minimumGap: Duration = .zero, logger: Logger = Logger(label: "mcp.session.bus")
    ) throws(SessionStorageError) {
        try self.init(connection: storage.configuration, channel: channel, instanceID: instanceID, attached: true, minimumGap: minimumGap, logger: logger)
        storage.emitChanges(through: emitter)
    }

    /// A bus that sends its own NOTIFYs, for a durable tier that is not this database.
    /// - Parameter minimumGap: The shortest time between two NOTIFYs (default 10 ms). A change
    ///   made when the bus is idle goes at once; under load, changes wait up to this long and
    ///   travel together. Every NOTIFY costs a transaction on the sender and a wake-up of every
    ///   instance's listener, so the gap buys write throughput with staleness: three instances
    ///   saturating one database wrote 0.64–0.75x of their bus-off rate at 2 ms, 0.85–1.05x at
    ///   10 ms and 0.94–1.04x at 50 ms (`scripts/bench Cluster`).
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
        try PostgresSchema.checkIdentifier(channel)
        guard !instanceID.contains("|"), !instanceID.contains("\n") else {
            throw SessionStorageError(.invalidInput, "instance id must not contain '|' or a line break")
        }
        guard minimumGap >= .zero else { throw SessionStorageError(.invalidInput, "minimumGap must not be negative") }
        self.instanceID = instanceID
        self.channel = channel
        self.logger = logger
        emitter = ChangeEmitter(channel: channel, origin: instanceID, attached: attached, minimumGap: minimumGap, logger: logger)
        var listening = try configuration.clientConfiguration()
        listening.options.minimumConnections = 0
        listening.options.maximumConnections = 1
        listening.options.keepAliveBehavior = nil
        // So operators (and the tests) can tell each instance's listener apart in pg_stat_activity.
        listening.options.additionalStartupParameters.append(("application_name", "mcp-bus-\(instanceID)"))
        listener = PostgresClient(configuration: listening, backgroundLogger: logger)
        if emitter.needsSender {
            var publishing = try configuration.clientConfiguration()
            publishing.options.maximumConnections = 1
            publisher = PostgresClient(configuration: publishing, backgroundLogger: logger)
        } else {
            publisher = nil
        }
        (stream, continuation) = AsyncStream.makeStream(of: BusSignal.self)
    }

    public func signals() -> AsyncStream<BusSignal> { stream }

    /// Queues `change` for the sender (standalone); a no-op when the durable writes emit changes.
    public func publish(_ change: SessionChange) async {
        guard !changesEmittedByDurableWrites else { return }
        emitter.enqueue(CollectionOfOne(change))
    }

    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listener.run() }
            group.addTask { await self.listen() }
            if let publisher {
                group.addTask { await publisher.run() }
                // Ending the wake-ups ends the sender; a plain stream, because
                // `cancelOnGracefulShutdown()` costs a thread hop per element.
                group.addTask { await withGracefulShutdownHandler { await self.send(with: publisher) } onGracefulShutdown: { self.emitter.finish() } }
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

    // MARK: Sending after the commits

    /// Sends the emitter's queue whenever woken, at most once per `minimumGap`: changes queued
    /// while a NOTIFY is in flight, or within the gap of the last one, go out together in the
    /// next. A change arriving when the bus is idle goes at once.
    private func send(with client: PostgresClient) async {
        // One connection held for as long as it works: no pool lease per NOTIFY.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await client.withConnection { connection in
                    for await _ in self.emitter.wakes {
                        sending: while true {
                            switch self.emitter.next() {
                            case .idle: break sending
                            case .wait(let deadline):
                                guard (try? await Task.sleep(until: deadline)) != nil else { return }
                            case .send(let payloads):
                                for payload in payloads {
                                    // A failure loses this batch: the receivers see the hole in the
                                    // sequence and flush. The next batch goes on a new connection.
                                    for try await _ in try await connection.execute(Notify(channel: self.channel, payload: payload), logger: self.logger) {}
                                }
                            }
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
}
