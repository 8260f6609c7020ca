import Foundation
import Logging
@_spi(Backend) import MCPSessionStorage
import NIOCore
import ServiceLifecycle

/// A ``ChangeBus`` over Redis pub/sub.
///
/// It `SUBSCRIBE`s on one connection of its own and hands each message to its subscribers on that
/// connection's event loop, as soon as it is read. The connection is checked every second (`PING`,
/// which a subscribed connection may send); when it closes or fails the check, subscribers hear
/// `disconnected` (the tiered storage flushes its front and turns it off), and the bus reconnects
/// with exponential backoff (100 ms up to 5 s), to the next node when there are several. In
/// Redis Cluster any node hears every `PUBLISH`.
///
/// What it sends comes from a ``ChangeEmitter``:
/// - **Inside the writes**, when the durable tier is this Redis: build the ``RedisSessionStorage``
///   and the bus with one emitter. Every write `PUBLISH`es its change in its own script, so the
///   message goes out if and only if the write happened, with no commit lock for writers to
///   queue on (as NOTIFY inside a PostgreSQL transaction has).
/// - **After the writes**, for any other durable tier (`init(configuration:minimumGap:)`): the
///   tiered storage publishes each change, and one sender sends them, merged, at most one
///   `PUBLISH` per gap, numbered so that receivers see any that are lost.
///
/// Run the bus as a `Service`: it runs the subscriber and the sender.
public final class RedisChangeBus: ChangeBus, Service {
    /// What this instance sends, and how.
    public let changes: ChangeEmitter
    public var instanceID: String { changes.instanceID }
    /// The pub/sub channel.
    public var channel: String { changes.channel }
    private let configuration: RedisSessionStorage.Configuration
    private let addresses: [RedisAddress]
    private let router: RedisRouter
    private let subscribers = BusSubscribers()
    private let watchdog = DeadlineWatchdog()
    private let logger: Logger

    /// How often the subscribed connection is checked, and how long a check may take.
    static let heartbeat: Duration = .seconds(1)
    static let heartbeatTimeout: Duration = .seconds(3)

    /// A bus on the Redis `configuration` names, sending what `changes` holds.
    /// - Parameters:
    ///   - configuration: The Redis to subscribe and publish on (standalone or cluster).
    ///   - changes: This instance's emitter; give the same one to a ``RedisSessionStorage`` on
    ///     this Redis to have its writes publish their changes themselves.
    /// - Throws: `invalidInput` for a malformed configuration.
    public init(configuration: RedisSessionStorage.Configuration, changes: ChangeEmitter, logger: Logger = Logger(label: "mcp.session.bus"))
        throws(SessionStorageError)
    {
        self.changes = changes
        self.configuration = configuration
        self.addresses = try configuration.validated()
        self.logger = logger
        self.router = RedisRouter(
            seeds: addresses, cluster: configuration.cluster, password: configuration.password, database: configuration.database,
            connectionsPerNode: 1, connectTimeout: configuration.connectTimeout,
            operationTimeout: configuration.operationTimeout, logger: logger)
    }

    /// A bus with an emitter of its own, for a durable tier that is not this Redis: changes are
    /// published after their writes and sent together, at most one `PUBLISH` per `minimumGap`.
    /// - Parameter channel: The pub/sub channel; by default the one for the configuration's key
    ///   prefix (``channel(forKeyPrefix:)``).
    public convenience init(
        configuration: RedisSessionStorage.Configuration, channel: String? = nil, instanceID: String = UUID().uuidString,
        minimumGap: Duration = .milliseconds(10), logger: Logger = Logger(label: "mcp.session.bus")
    ) throws(SessionStorageError) {
        let changes = try ChangeEmitter(
            instanceID: instanceID, channel: channel ?? Self.channel(forKeyPrefix: configuration.keyPrefix), minimumGap: minimumGap, logger: logger)
        try self.init(configuration: configuration, changes: changes, logger: logger)
    }

    /// The channel of the deployment whose keys start with `prefix`, so that deployments sharing
    /// one Redis under different prefixes do not hear each other: `mcp_session_changes` for the
    /// default prefix `mcp`, otherwise with the prefix appended (lowercased, anything but letters
    /// and digits as `_`, cut to the channel's 63 characters).
    public static func channel(forKeyPrefix prefix: String) -> String {
        let base = "mcp_session_changes"
        guard prefix != "mcp" else { return base }
        let suffix = prefix.lowercased().unicodeScalars.map { ("a"..."z").contains($0) || ("0"..."9").contains($0) ? Character($0) : "_" }
        return String((base + "_" + String(suffix)).prefix(63))
    }

    /// Queues `change` for the sender.
    public func publish(_ change: SessionChange) {
        changes.enqueue(CollectionOfOne(change))
    }

    public func subscribe(_ handler: @escaping @Sendable (BusSignal) -> Void) -> BusSubscription {
        subscribers.subscribe(handler)
    }

    /// Runs the subscriber and the sender until graceful shutdown or cancellation.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listen() }
            group.addTask {
                await withGracefulShutdownHandler {
                    await self.send()
                } onGracefulShutdown: {
                    self.changes.finish()
                }
            }
        }
        router.close()
    }

    // MARK: Listening

    private func listen() async {
        var backoff = Duration.milliseconds(50)
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let started = ContinuousClock.now
            let address = addresses[attempt % addresses.count]
            attempt += 1
            do {
                try await cancelWhenGracefulShutdown { try await self.listen(at: address) }
            } catch  where !(error is CancellationError) {
                logger.warning(
                    "change bus connection to Redis at \(address) lost; flushing and reconnecting",
                    metadata: ["error": "\(RedisErrors.describe(error))"])
            } catch {}
            subscribers.deliver(.disconnected)
            backoff = ContinuousClock.now - started > .seconds(10) ? .milliseconds(100) : min(backoff * 2, .seconds(5))
            try? await Task.sleep(for: backoff)
        }
    }

    /// The name the subscribed connection gives itself (`CLIENT LIST` shows it to operators):
    /// `mcp-bus-` and the instance id, with anything but letters, digits, `-`, `_` and `.` replaced by `_`.
    public static func clientName(_ instanceID: String) -> String {
        "mcp-bus-" + String(instanceID.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" })
    }

    /// Subscribes on a connection of its own at `address` until it closes or fails its check.
    private func listen(at address: RedisAddress) async throws {
        let connection = try await RedisConnection.connect(
            to: address, password: configuration.password, database: configuration.database, connectTimeout: configuration.connectTimeout,
            silenceLimit: configuration.operationTimeout, name: Self.clientName(instanceID),
            onMessage: { [weak self] message in self?.deliver(message) })
        do {
            try await watchdog.run(timeout: configuration.operationTimeout) { try await connection.send(["SUBSCRIBE", self.channel]).check() }
            subscribers.deliver(.connected)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await withTaskCancellationHandler {
                        try await connection.channel.closeFuture.get()
                    } onCancel: {
                        connection.close()
                    }
                    throw SessionStorageError(.unavailable, "the subscribed connection closed")
                }
                group.addTask { [watchdog] in
                    while true {
                        try await Task.sleep(for: Self.heartbeat)
                        _ = try await watchdog.run(timeout: Self.heartbeatTimeout) { try await connection.send(["PING"]).check() }
                    }
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch {
            connection.close()
            throw error
        }
    }

    /// A `["message", channel, payload]` array, on the event loop.
    private func deliver(_ message: RESPValue) {
        guard let parts = message.elements, parts.count == 3, case .bulk(let payload?) = parts[2] else { return }
        let text = String(decoding: payload, as: UTF8.self)
        subscribers.deliver(ChangeMessageText.signals(in: text[...], notFrom: instanceID, logger: logger))
    }

    // MARK: Sending after the writes

    /// Sends the emitter's queue whenever woken, at most once per `minimumGap`.
    private func send() async {
        for await _ in changes.wakes {
            sending: while true {
                switch changes.next() {
                case .idle: break sending
                case .wait(let deadline):
                    guard (try? await Task.sleep(until: deadline)) != nil else { return }
                case .send(let payloads):
                    for payload in payloads {
                        // A failure loses this batch: the receivers see the hole in the numbers and flush.
                        do {
                            _ = try await watchdog.run(timeout: configuration.operationTimeout) {
                                try await self.router.send(["PUBLISH", self.channel, payload], key: nil).check()
                            }
                        } catch {
                            logger.warning("could not publish change notifications", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
        }
    }
}
