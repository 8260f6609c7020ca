/// The one error type every ``SessionStorage`` throws.
///
/// Switch on ``code`` to decide what to do; ``message`` says what happened in words, and
/// ``underlying`` carries the backend's own error (a GRDB, PostgresNIO or HTTP error) for logs.
///
/// ```swift
/// do {
///     try await storage.setState(.string("x"), forKey: "k", in: id)
/// } catch let error where error.code == .sessionNotFound {
///     // answer 404
/// }
/// ```
public struct SessionStorageError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case sessionNotFound, invalidInput, limitExceeded, versionConflict, unavailable, corrupted
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The session does not exist (never created, deleted, or expired).
        public static let sessionNotFound = Code(.sessionNotFound)
        /// The caller passed something the contract rejects: a malformed session id, an empty key,
        /// a value that is not JSON. Nothing was written.
        public static let invalidInput = Code(.invalidInput)
        /// A configured limit would be exceeded: value size, state size per session, session count.
        /// Nothing was written.
        public static let limitExceeded = Code(.limitExceeded)
        /// An optimistic write found another version than it expected (or a session created with
        /// an id that is already taken). Reload and retry.
        public static let versionConflict = Code(.versionConflict)
        /// The backend cannot be reached or timed out. The storage heals by itself when the
        /// backend returns; retrying later is safe.
        public static let unavailable = Code(.unavailable)
        /// The backend returned data that does not decode (edited by hand, or a newer schema).
        public static let corrupted = Code(.corrupted)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, for people.
    public var message: String
    /// The backend's own error, if there was one.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying {
            return "\(code): \(message) (\(underlying))"
        }
        return "\(code): \(message)"
    }
}

extension SessionStorageError {
    /// The error for a session that does not exist.
    public static func sessionNotFound(_ id: SessionID) -> SessionStorageError {
        SessionStorageError(.sessionNotFound, "session \(id) does not exist")
    }

    /// The error for a session record or state value that a backend stored but cannot decode.
    public static func corrupted(_ what: String, underlying: (any Error)? = nil) -> SessionStorageError {
        SessionStorageError(.corrupted, what, underlying: underlying)
    }
}
