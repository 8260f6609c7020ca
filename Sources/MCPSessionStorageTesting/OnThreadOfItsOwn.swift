import Foundation

/// Runs blocking `work` (waiting for a child process, reading a pipe) on a thread of its own and
/// returns its result.
///
/// Swift's cooperative pool has one thread per core; a test that blocks one of them stalls every
/// other test in the process, and their storage calls start to time out. Tests that start
/// servers, run command-line tools or talk to child processes wait here instead.
public func onThreadOfItsOwn<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
