import Foundation
import Logging
@_spi(Backend) import MCPSessionStorage
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A ``ChangeBus`` over PostgreSQL LISTEN/NOTIFY.
///
/// It LISTENs on one connection of its own and hands each notification to its subscribers on
/// that connection's event loop, as soon as it is read. The connection is checked every second;
/// when it fails, subscribers hear `disconnected` (the tiered storage turns its front off and
/// flushes it), and the bus reconnects with exponential backoff (100 ms up to 5 s).
///
/// What it sends comes from a ``ChangeEmitter``:
/// - **Inside the writes**, when the durable tier is this same database: build the
///   ``PostgresSessionStorage`` and the bus with one emitter. Every write carries its NOTIFY in
///   its own statement, sent if and only if it commits; with a `minimumGap`, only a write after
///   a quiet gap does, carrying the changes queued since.
/// - **After the writes**, for any other durable tier (`init(configuration:minimumGap:)`):
///   the tiered storage publishes each change, and one sender sends them, merged, in as few
///   NOTIFYs as fit 7 000 bytes, at most one per gap.
///
/// Changes sent after their writes are numbered, so receivers see any that are lost. Run the bus
/// as a `Service`: it runs the listener and the sender.
public final class PostgresChangeBus: ChangeBus, Service {
    /// What this instance sends, and how.
    public let changes: ChangeEmitter
    /// The channel LISTENed and NOTIFYed on.
    public var channel: String { changes.channel }
    public var instanceID: String { changes.instanceID }
    /// One connection, leased for as long as it listens.
    private let listener: PostgresClient
    /// One connection for the NOTIFYs sent after writes.
    private let sender: PostgresClient
    private let subscribers = BusSubscribers()
    private let watchdog = DeadlineWatchdog()
    private let logger: Logger

    /// How often the listening connection is checked, and how long a check may take.
    static let heartbeat: Duration = .seconds(1)
    static let heartbeatTimeout: Duration = .seconds(3)

    /// A bus on the database `configuration` names, sending what `changes` holds.
    /// - Parameters:
    ///   - configuration: The database to LISTEN and NOTIFY on (its schema does not matter).
    ///   - changes: This instance's emitter; give the same one to a ``PostgresSessionStorage`` on
    ///     this database to have its writes carry their NOTIFYs.
    /// - Throws: `invalidInput` for a malformed configuration.
    public init(
        configuration: PostgresSessionStorage.Configuration, changes: ChangeEmitter, logger: Logger = Logger(label: "mcp.session.bus")
    ) throws(SessionStorageError) {
        self.changes = changes
        self.logger = logger
        var listening = try configuration.clientConfiguration()
        listening.options.minimumConnections = 0
        listening.options.maximumConnections = 1
        listening.options.keepAliveBehavior = nil
        // So operators (and the tests) can tell each instance's listener apart in pg_stat_activity.
        listening.options.additionalStartupParameters.append(("application_name", "mcp-bus-\(changes.instanceID)"))
        listener = PostgresClient(configuration: listening, backgroundLogger: logger)
        var sending = try configuration.clientConfiguration()
        sending.options.minimumConnections = 0
        sending.options.maximumConnections = 1
        sender = PostgresClient(configuration: sending, backgroundLogger: logger)
    }

    /// A bus with an emitter of its own, for a durable tier that is not this database: changes
    /// are published after their writes and sent together, at most one NOTIFY per `minimumGap`.
    /// - Parameter minimumGap: Default 10 ms. A change made when the bus is idle goes at once;
    ///   under load, changes wait up to this long and travel together. Every NOTIFY costs a
    ///   transaction on the sender and a wake-up of every instance's listener, so the gap buys
    ///   write throughput with staleness (see the cluster guide for measured figures).
    public convenience init(
        configuration: PostgresSessionStorage.Configuration, channel: String = "mcp_session_changes", instanceID: String = UUID().uuidString,
        minimumGap: Duration = .milliseconds(10), logger: Logger = Logger(label: "mcp.session.bus")
    ) throws(SessionStorageError) {
        let changes = try ChangeEmitter(instanceID: instanceID, channel: channel, minimumGap: minimumGap, logger: logger)
        try self.init(configuration: configuration, changes: changes, logger: logger)
    }

    /// The shortest time between two NOTIFYs sent apart from their writes.
    public var minimumGap: Duration { changes.minimumGap }

    /// Queues `change` for the sender.
    public func publish(_ change: SessionChange) {
        changes.enqueue(CollectionOfOne(change))
    }

    public func subscribe(_ handler: @escaping @Sendable (BusSignal) -> Void) -> BusSubscription {
        subscribers.subscribe(handler)
    }

    /// Runs the listener and the sender until graceful shutdown or cancellation.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listener.run() }
            group.addTask { await self.listen() }
            group.addTask { await self.sender.run() }
            // Ending the wake-ups ends the sender; a plain stream, because
            // `cancelOnGracefulShutdown()` costs a thread hop per element.
            group.addTask {
                await withGracefulShutdownHandler {
                    await self.send()
                } onGracefulShutdown: {
                    self.changes.finish()
                }
            }
        }
    }

    // MARK: Listening

    private func listen() async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let attempt = ContinuousClock.now
            do {
                try await cancelWhenGracefulShutdown { try await self.listener.withConnection { try await self.listen(on: $0) } }
            } catch  where !(error is CancellationError) {
                logger.warning("change bus connection lost; flushing and reconnecting", metadata: ["error": "\(error)"])
            } catch {}
            subscribers.deliver(.disconnected)
            // Back off only while reconnecting fails fast; a connection that listened for a
            // while starts again from the shortest wait.
            let lasted = ContinuousClock.now - attempt
            backoff = lasted > .seconds(10) ? .milliseconds(100) : min(backoff * 2, .seconds(5))
            try? await Task.sleep(for: backoff)
        }
    }

    /// Listens on `connection` until it closes or fails its check (every ``heartbeat``).
    private func listen(on connection: PostgresConnection) async throws {
        // The handler runs on the connection's event loop as each notification is read.
        let context = connection.addListener(channel: channel) { [weak self] _, notification in self?.deliver(notification.payload) }
        defer { context.stop() }
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "LISTEN \(channel)"), logger: logger)
            subscribers.deliver(.connected)
            try await withThrowingTaskGroup(of: Void.self) { group in
                // A closed socket (the backend killed, the server restarted) is seen at once; a
                // silent one (a partition) by the check.
                group.addTask {
                    try await withTaskCancellationHandler {
                        try await connection.closeFuture.get()
                    } onCancel: {
                        connection.close().whenComplete { _ in }
                    }
                    throw SessionStorageError(.unavailable, "the listening connection closed")
                }
                group.addTask { [watchdog, logger] in
                    while true {
                        try await Task.sleep(for: Self.heartbeat)
                        _ = try await watchdog.run(timeout: Self.heartbeatTimeout) { try await connection.query("SELECT 1", logger: logger) }
                    }
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch {
            // A connection that failed its check may hang: never hand it back to the pool.
            try? await connection.close()
            throw error
        }
    }

    private func deliver(_ payload: String) {
        subscribers.deliver(ChangeMessageText.signals(in: payload[...], notFrom: instanceID, logger: logger))
    }

    // MARK: Sending after the writes

    /// Sends the emitter's queue whenever woken, at most once per `minimumGap`: changes queued
    /// while a NOTIFY is in flight, or within the gap of the last one, go out together in the
    /// next. A change arriving when the bus is idle goes at once.
    private func send() async {
        // One connection held for as long as it works: no pool lease per NOTIFY.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await sender.withConnection { connection in
                    for await _ in self.changes.wakes {
                        sending: while true {
                            switch self.changes.next() {
                            case .idle: break sending
                            case .wait(let deadline):
                                guard (try? await Task.sleep(until: deadline)) != nil else { return }
                            case .send(let payloads):
                                for payload in payloads {
                                    // A failure loses this batch: the receivers see the hole in the
                                    // sequence and flush. The next batch goes on a new connection.
                                    for try await _ in try await connection.execute(
                                        Notify(channel: self.channel, payload: payload), logger: self.logger)
                                    {}
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
