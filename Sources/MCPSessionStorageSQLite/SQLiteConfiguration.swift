@_spi(Backend) import MCPSessionStorage

extension SQLiteSessionStorage {
    /// How the SQLite backend opens its file and what it keeps.
    ///
    /// ```swift
    /// var configuration = SQLiteSessionStorage.Configuration(path: "/var/lib/mcp/sessions.db")
    /// configuration.synchronous = .full          // survive power loss, not only crashes
    /// configuration.policy.maxEventsPerSession = 5000
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
        /// Session lifetime, value sizes, events kept per session (default 1000): the shared policy.
        public var policy = SessionPolicy()

        public init(path: String = "mcp_sessions.db", policy: SessionPolicy = SessionPolicy()) {
            self.path = path
            self.policy = policy
        }
    }
}
