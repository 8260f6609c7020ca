import MCPSessionStorage

extension SQLiteSessionStorage {
    /// How the SQLite backend opens its file and what it keeps.
    ///
    /// ```swift
    /// var configuration = SQLiteSessionStorage.Configuration(path: "/var/lib/mcp/sessions.db")
    /// configuration.synchronous = .full          // survive power loss, not only crashes
    /// configuration.limits.maxEventsPerSession = 5000
    /// let storage = try SQLiteSessionStorage(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// How hard SQLite works to keep a commit on disk.
        public enum Synchronous: String, Sendable {
            /// `synchronous=NORMAL` (the default): with WAL, a commit survives any crash of the
            /// process (SIGKILL included); only a power loss or OS crash may roll back the last
            /// commits. Much faster than `full`.
            case normal = "NORMAL"
            /// `synchronous=FULL`: every commit is fsynced, so it survives power loss too.
            case full = "FULL"
        }

        /// The database file; created with its folder's permissions if missing. Default `mcp_sessions.db`.
        public var path: String = "mcp_sessions.db"
        /// Readers that may run at once beside the single writer (WAL mode). Default 4.
        public var readers: Int = 4
        /// Default ``Synchronous/normal``.
        public var synchronous: Synchronous = .normal
        /// How long a write waits for another process holding the file's write lock before it
        /// fails with `unavailable`. Default 5 seconds.
        public var busyTimeout: Duration = .seconds(5)
        /// Idle time after which a session expires, for ``SQLiteSessionStorage/cleanupService(logger:)``. Default 30 minutes.
        public var sessionTTL: Duration = .seconds(1800)
        /// Time between expiry passes of the cleanup service. Default 60 seconds.
        public var cleanupInterval: Duration = .seconds(60)
        /// Value sizes, events kept per session (default 1000), and the rest of the shared limits.
        public var limits = SessionLimits()

        public init(path: String = "mcp_sessions.db", limits: SessionLimits = SessionLimits()) {
            self.path = path
            self.limits = limits
        }
    }
}
