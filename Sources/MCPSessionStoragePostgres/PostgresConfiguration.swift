import Foundation
@_spi(Backend) import MCPSessionStorage
import PostgresNIO

extension PostgresSessionStorage {
    /// Where the PostgreSQL backend connects and how it behaves.
    ///
    /// ```swift
    /// var configuration = try PostgresSessionStorage.Configuration(url: "postgres://mcp:secret@db:5432/mcp")
    /// configuration.maximumConnections = 32
    /// configuration.tls = .require(.makeClientConfiguration())
    /// let storage = try PostgresSessionStorage(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// Whether the storage creates and migrates its tables.
        public enum Migrations: Sendable {
            /// Before the first call, under an advisory lock so instances starting together do not race. The default.
            case automatic
            /// Never: a DBA owns the schema (see `PostgresSchema.sql` for what to run).
            case skip
        }

        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String?
        /// Default `.prefer`: TLS when the server offers it.
        public var tls: PostgresClient.Configuration.TLS = .prefer(.makeClientConfiguration())
        /// The schema holding the tables, set as the connections' `search_path`. Default `public`.
        /// Letters, digits and `_` only.
        public var schema: String = "public"
        /// Connections kept open at least. Default 0.
        public var minimumConnections: Int = 0
        /// Connections open at most. Default 20.
        public var maximumConnections: Int = 20
        /// How long opening a connection may take. Default 5 seconds.
        public var connectTimeout: Duration = .seconds(5)
        /// How long any call may take, waiting for a connection included, before it fails with
        /// `unavailable`. Default 10 seconds.
        public var operationTimeout: Duration = .seconds(10)
        /// Default ``Migrations/automatic``.
        public var migrations: Migrations = .automatic
        /// Session lifetime, value sizes, events kept per session: the shared policy.
        public var policy = SessionPolicy()

        public init(host: String, port: Int = 5432, username: String, password: String?, database: String?) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
        }

        /// Reads `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`. Query parameters `sslmode`
        /// (`disable`, `prefer`, `require`) and `schema` are understood.
        /// - Throws: `invalidInput` for anything else.
        public init(url text: String) throws(SessionStorageError) {
            guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? ""),
                let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
            else {
                throw SessionStorageError(.invalidInput, "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got \(text.debugDescription)")
            }
            let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
            self.init(
                host: host, port: components.port ?? 5432, username: user.removingPercentEncoding ?? user,
                password: components.password?.removingPercentEncoding ?? components.password,
                database: database.isEmpty ? nil : database)
            for item in components.queryItems ?? [] {
                switch (item.name, item.value) {
                case ("sslmode", "disable"): tls = .disable
                case ("sslmode", "prefer"): tls = .prefer(.makeClientConfiguration())
                case ("sslmode", "require"): tls = .require(.makeClientConfiguration())
                case ("schema", let value?): schema = value
                default: throw SessionStorageError(.invalidInput, "unknown PostgreSQL URL parameter \(item.name)=\(item.value ?? "")")
                }
            }
        }

        /// The PostgresNIO client configuration this describes.
        func clientConfiguration() throws(SessionStorageError) -> PostgresClient.Configuration {
            try PostgresSchema.checkIdentifier(schema)
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
            configuration.options.minimumConnections = minimumConnections
            configuration.options.maximumConnections = maximumConnections
            configuration.options.connectTimeout = connectTimeout
            configuration.options.additionalStartupParameters = [("search_path", schema)]
            return configuration
        }
    }
}
