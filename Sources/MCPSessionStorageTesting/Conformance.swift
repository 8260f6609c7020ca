import Foundation
import MCPSessionStorage

/// The checks every ``SessionStorage`` must pass, as a library: run them against your own
/// backend from any test framework.
///
/// With Swift Testing, one test per check:
///
/// ```swift
/// import MCPSessionStorageTesting
/// import Testing
///
/// @Test(arguments: SessionStorageConformance.checks)
/// func conformance(_ check: SessionStorageConformance.Check) async throws {
///     try await check.run { policy in try await MyStorage(policy: policy) }
/// }
/// ```
///
/// The factory must return a storage that shares nothing with any other the factory returned
/// (a new file, a new schema, a new key prefix): checks run in parallel and count sessions.
public enum SessionStorageConformance {
    /// Makes a fresh, empty storage that enforces the given policy (or a stricter one it
    /// declares in its own ``SessionStorage/policy``: checks size their data from that).
    public typealias Factory = @Sendable (SessionPolicy) async throws -> any SessionStorage

    /// One named check of the contract.
    public struct Check: Sendable, CustomStringConvertible {
        /// What the check proves, in words.
        public let name: String
        let body: @Sendable (Context) async throws -> Void

        /// Runs the check against storages made by `factory`; throws ``ConformanceFailure`` when
        /// the backend breaks the contract.
        public func run(_ factory: @escaping Factory) async throws {
            try await body(Context(factory: factory))
        }

        public var description: String { name }
    }

    /// What a check body gets: a way to make storages.
    struct Context: Sendable {
        let factory: Factory

        func storage(_ policy: SessionPolicy = SessionPolicy()) async throws -> any SessionStorage {
            try await factory(policy)
        }
    }

    /// Every check, in contract order: sessions, state, events, leases, expiry, bad input, concurrency.
    public static var checks: [Check] {
        sessionChecks + stateChecks + eventChecks + leaseChecks + expiryChecks + inputChecks + concurrencyChecks
    }
}

/// A broken point of the contract: what was expected and where the check stands.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public let message: String
    public let file: StaticString
    public let line: UInt

    public var description: String { "\(file):\(line): \(message)" }
}

// MARK: - Assertions

func expect(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) throws {
    if !condition { throw ConformanceFailure(message: message(), file: file, line: line) }
}

func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    if actual != expected {
        throw ConformanceFailure(message: "\(what): expected \(expected), got \(actual)", file: file, line: line)
    }
}

/// Runs `body` and requires it to throw a `SessionStorageError` with `code`.
func expectError<T>(
    _ code: SessionStorageError.Code, _ what: String, file: StaticString = #filePath, line: UInt = #line,
    _ body: () async throws -> T
) async throws {
    do {
        let value = try await body()
        throw ConformanceFailure(message: "\(what): expected \(code), got success (\(value))", file: file, line: line)
    } catch let error as SessionStorageError {
        try expectEqual(error.code, code, "\(what): error code (\(error))", file: file, line: line)
    } catch let failure as ConformanceFailure {
        throw failure
    } catch {
        throw ConformanceFailure(message: "\(what): expected SessionStorageError(\(code)), got \(type(of: error)): \(error)", file: file, line: line)
    }
}

func require<T>(_ value: T?, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws -> T {
    guard let value else { throw ConformanceFailure(message: "\(what): expected a value, got nil", file: file, line: line) }
    return value
}

/// Dates survive a backend with at least millisecond precision.
func expectClose(
    _ actual: Date, _ expected: Date, within seconds: TimeInterval = 0.002, _ what: String, file: StaticString = #filePath, line: UInt = #line
) throws {
    try expect(abs(actual.timeIntervalSince(expected)) <= seconds, "\(what): expected about \(expected), got \(actual)", file: file, line: line)
}

extension SessionStorageConformance.Check {
    init(_ name: String, _ body: @escaping @Sendable (SessionStorageConformance.Context) async throws -> Void) {
        self.name = name
        self.body = body
    }
}
