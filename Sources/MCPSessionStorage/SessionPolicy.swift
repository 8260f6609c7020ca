import Foundation

/// How long sessions live and how much they may hold: the one place a storage, the tier above
/// it, the cleanup service and the server all read their session policy from.
///
/// Every backend enforces it with the same errors, so a session behaves the same on any of
/// them. Exceeding a size limit throws ``SessionStorageError/Code/limitExceeded`` and writes
/// nothing; no value is ever truncated.
///
/// ```swift
/// var configuration = SQLiteSessionStorage.Configuration(path: "sessions.db")
/// configuration.policy.sessionTTL = .seconds(600)      // idle sessions expire after 10 minutes
/// configuration.policy.maxEventsPerSession = 5000
/// ```
public struct SessionPolicy: Sendable, Hashable {
    /// How long a session may stay idle. After that the server answers 404 for it, and the
    /// cleanup service removes it with its state and events. Default 30 minutes.
    public var sessionTTL: Duration = .seconds(1800)
    /// Time between two passes of ``SessionCleanupService``. Default half the TTL, at most 60
    /// seconds and at least 100 milliseconds.
    public var cleanupInterval: Duration {
        get { explicitCleanupInterval ?? max(.milliseconds(100), min(.seconds(60), sessionTTL / 2)) }
        set { explicitCleanupInterval = newValue }
    }
    /// ``SessionStorage/touchSession(_:at:)`` writes `lastActivity` only when the stored one is
    /// older than this, so requests do not turn into writes. Default a third of the TTL, at most
    /// 15 seconds, so a session used more often than its TTL never expires.
    public var activityWriteInterval: Duration {
        get { explicitActivityWriteInterval ?? min(.seconds(15), sessionTTL / 3) }
        set { explicitActivityWriteInterval = newValue }
    }
    /// The largest state value, as compact JSON bytes. Default 1 MiB.
    public var maxStateValueBytes: Int = 1 << 20
    /// The largest total state of one session: the sum of its keys' and values' bytes. Default 8 MiB.
    public var maxStateBytesPerSession: Int = 8 << 20
    /// The longest state key, in UTF-8 bytes. Default 256.
    public var maxKeyBytes: Int = 256
    /// The largest event payload, as compact JSON bytes. Default 1 MiB.
    public var maxEventBytes: Int = 1 << 20
    /// Events kept per session; appending past it trims the oldest. Default 1000.
    public var maxEventsPerSession: Int = 1000

    private var explicitCleanupInterval: Duration?
    private var explicitActivityWriteInterval: Duration?

    /// The defaults above.
    public init() {}

    /// A policy with the given values; those left out keep their defaults.
    public init(
        sessionTTL: Duration = .seconds(1800),
        maxStateValueBytes: Int = 1 << 20,
        maxStateBytesPerSession: Int = 8 << 20,
        maxKeyBytes: Int = 256,
        maxEventBytes: Int = 1 << 20,
        maxEventsPerSession: Int = 1000,
        activityWriteInterval: Duration? = nil
    ) {
        self.sessionTTL = sessionTTL
        self.maxStateValueBytes = maxStateValueBytes
        self.maxStateBytesPerSession = maxStateBytesPerSession
        self.maxKeyBytes = maxKeyBytes
        self.maxEventBytes = maxEventBytes
        self.maxEventsPerSession = maxEventsPerSession
        self.explicitActivityWriteInterval = activityWriteInterval
    }

    /// Whether a session last active at `lastActivity` has outlived the TTL at `now`.
    public func isExpired(lastActivity: Date, at now: Date = Date()) -> Bool {
        now.timeIntervalSince(lastActivity) > sessionTTL.timeInterval
    }
}
