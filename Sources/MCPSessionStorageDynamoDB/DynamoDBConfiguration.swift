import Foundation
@_spi(Backend) import MCPSessionStorage

extension DynamoDBSessionStorage {
    /// Where the DynamoDB backend keeps its sessions and how it behaves.
    ///
    /// ```swift
    /// var configuration = try DynamoDBSessionStorage.Configuration(url: "dynamodb://mcp-sessions?region=eu-west-1")
    /// configuration.operationTimeout = .seconds(3)
    /// let storage = try DynamoDBSessionStorage(configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The table. It holds nothing else (see `Docs/DynamoDB.md` for its definition).
        public var table: String
        /// The region, such as `eu-west-1`. Default: `AWS_REGION`, `AWS_DEFAULT_REGION`, the
        /// profile's region in `~/.aws/config`, else `us-east-1`.
        public var region: String
        /// The endpoint: `nil` (the default) for `https://dynamodb.REGION.amazonaws.com`, or a
        /// local server's URL such as `http://127.0.0.1:8000`.
        public var endpoint: String?
        /// Where credentials come from. Default ``AWSCredentialSource/standard``: the environment,
        /// the shared credentials file under `AWS_PROFILE`, the container endpoint.
        public var credentials: AWSCredentialSource = .standard
        /// Whether the storage creates the table (on-demand billing, with its indexes and TTL) on
        /// first use when it is missing, and waits until it is ACTIVE. Default `false`: the table
        /// is an operator's decision; the server executable turns it on.
        public var createTable = false
        /// How long any call may take, retries included, before it fails with `unavailable`.
        /// Default 5 seconds.
        public var operationTimeout: Duration = .seconds(5)
        /// How long creating a table may take before calls give up on it. Default 5 minutes.
        public var tableCreationTimeout: Duration = .seconds(300)
        /// How throttled and failed requests are retried. Default: up to 10 attempts, 25 ms
        /// doubling to at most 1 second, full jitter.
        public var retry = RetryPolicy()
        /// Partitions of the indexes on activity and on id, which expiry and listing read. More
        /// spread a very large table's index writes; fewer make a pass cheaper. Default 8. Fixed
        /// for the life of a table: every instance must use the same.
        public var indexBuckets = 8
        /// Session lifetime, value sizes, events kept per session: the shared policy. The storage
        /// declares stricter value limits where DynamoDB's 400 KB item limit requires (see
        /// ``DynamoDBSessionStorage/policy``).
        public var policy = SessionPolicy()

        /// A table in a region.
        /// - Parameters:
        ///   - table: The table's name (3–255 of `A-Z a-z 0-9 _ - .`).
        ///   - region: The region; `nil` reads it from the environment as ``region`` says.
        ///   - endpoint: A custom endpoint URL, for a local DynamoDB-compatible server.
        public init(table: String, region: String? = nil, endpoint: String? = nil) {
            self.table = table
            self.region = region ?? Self.defaultRegion()
            self.endpoint = endpoint
        }

        /// Reads `dynamodb://TABLE[?region=REGION][&endpoint=URL][&create=true|false]`.
        /// - Throws: `invalidInput` for anything else.
        public init(url text: String) throws(SessionStorageError) {
            guard text.hasPrefix("dynamodb://") else {
                throw SessionStorageError(
                    .invalidInput, "expected dynamodb://TABLE?region=REGION[&endpoint=URL], got \(text.prefix(64).debugDescription)")
            }
            var rest = Substring(text.dropFirst("dynamodb://".count))
            var region: String?
            var endpoint: String?
            var create: Bool?
            if let question = rest.firstIndex(of: "?") {
                for item in rest[rest.index(after: question)...].split(separator: "&") {
                    let pair = item.split(separator: "=", maxSplits: 1)
                    let value = pair.count == 2 ? String(pair[1]).removingPercentEncoding ?? String(pair[1]) : ""
                    switch (pair.first.map(String.init), value) {
                    case ("region", let value) where !value.isEmpty: region = value
                    case ("endpoint", let value) where !value.isEmpty: endpoint = value
                    case ("create", "true"): create = true
                    case ("create", "false"): create = false
                    default:
                        throw SessionStorageError(
                            .invalidInput,
                            "unknown DynamoDB URL parameter \(item.prefix(32).debugDescription); expected region=, endpoint= or create=true|false")
                    }
                }
                rest = rest[..<question]
            }
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            self.init(table: String(rest), region: region, endpoint: endpoint)
            if let create { createTable = create }
            try validate()
        }

        /// The region the environment names, else `us-east-1`.
        static func defaultRegion(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
            for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
                if let region = environment[name], !region.isEmpty { return region }
            }
            let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
            return SharedCredentialsFile.region(environment, profile: profile) ?? "us-east-1"
        }

        /// The endpoint used: the custom one, or the region's.
        public var resolvedEndpoint: String { endpoint ?? "https://dynamodb.\(region).amazonaws.com" }

        /// Checks the settings.
        func validate() throws(SessionStorageError) {
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.".utf8)
            guard (3...255).contains(table.utf8.count), table.utf8.allSatisfy(allowed.contains) else {
                throw SessionStorageError(
                    .invalidInput, "a DynamoDB table name is 3–255 of A-Z a-z 0-9 _ - ., got \(table.prefix(64).debugDescription)")
            }
            guard !region.isEmpty, region.utf8.allSatisfy(allowed.contains) else {
                throw SessionStorageError(.invalidInput, "bad AWS region \(region.prefix(32).debugDescription)")
            }
            guard (1...1000).contains(indexBuckets) else { throw SessionStorageError(.invalidInput, "indexBuckets must be 1–1000") }
            guard retry.maxAttempts >= 1 else { throw SessionStorageError(.invalidInput, "retry.maxAttempts must be at least 1") }
        }
    }

    /// How throttled and failed requests are retried: capped exponential backoff with full
    /// jitter (a random wait between zero and `min(maxDelay, baseDelay × 2^attempt)`), the AWS
    /// SDKs' scheme, so many clients backing off at once do not retry in step.
    public struct RetryPolicy: Sendable, Hashable {
        /// Attempts in all, the first included. Default 10 (DynamoDB's in the AWS SDKs). 1: no retry.
        public var maxAttempts = 10
        /// The first backoff's upper bound. Default 25 ms.
        public var baseDelay: Duration = .milliseconds(25)
        /// The largest backoff. Default 1 second.
        public var maxDelay: Duration = .seconds(1)

        /// The defaults above.
        public init() {}

        /// The wait after failed attempt number `attempt` (1 for the first).
        func delay(afterAttempt attempt: Int) -> Duration {
            let ceiling = min(maxDelay, baseDelay * (1 << min(attempt - 1, 20)))
            let nanoseconds = Int64(ceiling / .nanoseconds(1))
            return .nanoseconds(nanoseconds > 0 ? Int64.random(in: 0...nanoseconds) : 0)
        }
    }
}
