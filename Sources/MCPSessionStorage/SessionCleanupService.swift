import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// A background `Service` that expires sessions idle longer than the storage's
/// ``SessionPolicy/sessionTTL``, every ``SessionPolicy/cleanupInterval``.
///
/// ``SessionStack`` runs one for you. Alone:
///
/// ```swift
/// let cleanup = SessionCleanupService(storage: storage, logger: logger)
/// let group = ServiceGroup(services: [server, cleanup], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Give it the storage the server uses (the tiered one, if any), so the other instances hear
/// of each expired session. A failed pass (the backend is down) is logged and counted, and the
/// next pass tries again; the service itself only ends at graceful shutdown or cancellation.
public struct SessionCleanupService: Service {
    private let storage: any SessionStorage
    private let logger: Logger
    private let onExpire: @Sendable ([SessionID]) async -> Void
    private let expired = Counter(label: "mcp_session_storage_expired_sessions")
    private let failures = Counter(label: "mcp_session_storage_cleanup_failures")

    /// - Parameters:
    ///   - storage: The storage to clean; its policy sets the TTL and the interval.
    ///   - onExpire: Called with the ids each pass removed (to drop caches, close streams).
    public init(
        storage: any SessionStorage, logger: Logger = Logger(label: "mcp.session.cleanup"),
        onExpire: @escaping @Sendable ([SessionID]) async -> Void = { _ in }
    ) {
        self.storage = storage
        self.logger = logger
        self.onExpire = onExpire
    }

    /// One pass: expires the sessions idle past the TTL as of `now`.
    /// - Returns: The ids removed.
    @discardableResult
    public func runOnce(now: Date = Date()) async throws(SessionStorageError) -> [SessionID] {
        let ids = try await storage.expireSessions(olderThan: now.addingTimeInterval(-storage.policy.sessionTTL.timeInterval))
        if !ids.isEmpty {
            expired.increment(by: ids.count)
            logger.debug("expired idle sessions", metadata: ["count": "\(ids.count)"])
            await onExpire(ids)
        }
        return ids
    }

    public func run() async throws {
        let ticks = AsyncTimerSequence.repeating(every: storage.policy.cleanupInterval)
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
