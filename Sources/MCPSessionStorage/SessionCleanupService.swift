import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// A background `Service` that expires sessions idle longer than the TTL, on an interval.
///
/// Run it in your `ServiceGroup` beside the server:
///
/// ```swift
/// let cleanup = SessionCleanupService(storage: storage, ttl: .seconds(1800), interval: .seconds(60), logger: logger)
/// let group = ServiceGroup(services: [server, cleanup], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// A failed pass (the backend is down) is logged and counted, and the next pass tries again;
/// the service itself only ends at graceful shutdown or cancellation.
public struct SessionCleanupService: Service {
    private let storage: any SessionStorage
    private let ttl: Duration
    private let interval: Duration
    private let logger: Logger
    private let onExpire: @Sendable ([SessionID]) async -> Void
    private let expired = Counter(label: "mcp_session_storage_expired_sessions")
    private let failures = Counter(label: "mcp_session_storage_cleanup_failures")

    /// - Parameters:
    ///   - storage: The storage to clean.
    ///   - ttl: How long a session may stay idle. Default 30 minutes.
    ///   - interval: Time between passes. Default 60 seconds.
    ///   - onExpire: Called with the ids each pass removed (to drop caches, close streams).
    public init(
        storage: any SessionStorage,
        ttl: Duration = .seconds(1800),
        interval: Duration = .seconds(60),
        logger: Logger = Logger(label: "mcp.session.cleanup"),
        onExpire: @escaping @Sendable ([SessionID]) async -> Void = { _ in }
    ) {
        self.storage = storage
        self.ttl = ttl
        self.interval = interval
        self.logger = logger
        self.onExpire = onExpire
    }

    /// One pass: expires the sessions idle past the TTL as of `now`, and returns their ids.
    @discardableResult
    public func runOnce(now: Date = Date()) async throws(SessionStorageError) -> [SessionID] {
        let ids = try await storage.expireSessions(olderThan: now.addingTimeInterval(-ttl.timeInterval))
        if !ids.isEmpty {
            expired.increment(by: ids.count)
            logger.debug("expired idle sessions", metadata: ["count": "\(ids.count)"])
            await onExpire(ids)
        }
        return ids
    }

    public func run() async throws {
        let ticks = AsyncTimerSequence.repeating(every: interval)
        for await _ in ticks.cancelOnGracefulShutdown() {
            do {
                try await runOnce()
            } catch {
                failures.increment()
                logger.warning("session cleanup pass failed; retrying next interval", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// A clock-driven sequence of ticks, one per `interval`, so the service needs no extra package.
struct AsyncTimerSequence: AsyncSequence, Sendable {
    typealias Element = Void
    let interval: Duration

    static func repeating(every interval: Duration) -> AsyncTimerSequence { AsyncTimerSequence(interval: interval) }

    struct AsyncIterator: AsyncIteratorProtocol {
        let interval: Duration
        mutating func next() async -> Void? {
            do {
                try await Task.sleep(for: interval)
                return ()
            } catch {
                return nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(interval: interval) }
}
