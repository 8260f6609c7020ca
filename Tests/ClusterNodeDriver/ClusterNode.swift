import Foundation
import MCPSessionStorage
import MCPSessionStorageTesting

/// One `TieredClusterNode` process, driven line by line.
///
/// Reading its answers blocks, so every call that waits for one runs on a thread of its own:
/// a blocked thread of the cooperative pool (two on this machine) would stall every other test
/// in the process, and their storage calls would time out.
///
/// `@unchecked Sendable`: its only mutable state, the read buffer, is touched inside `send` and
/// `init` alone, and a test awaits each `send` before it starts the next on the same node, so two
/// threads never touch it at once (the continuation's resume orders one thread's writes before
/// the next call's reads). `Process` and `Pipe` are thread-safe for these uses.
public final class ClusterNode: @unchecked Sendable {
    public let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer = Data()

    /// Starts a node on the storage at `url` (PostgreSQL or Redis) under `schema` (a schema, or
    /// a key prefix), and waits until its bus is connected.
    public static func start(url: String, schema: String, channel: String, instance: String, mode: String = "attached") async throws
        -> ClusterNode
    {
        try await onThreadOfItsOwn { try ClusterNode(url: url, schema: schema, channel: channel, instance: instance, mode: mode) }
    }

    private init(url: String, schema: String, channel: String, instance: String, mode: String) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("TieredClusterNode")
        process.arguments = [url, schema, channel, instance, mode]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let greeting = try readLine()
        guard greeting == "ready" else { throw SessionStorageError(.unavailable, "node \(instance) said \(greeting)") }
    }

    deinit { if process.isRunning { process.terminate() } }

    /// Sends one command and returns its one-line answer.
    @discardableResult
    public func send(_ command: String) async throws -> String {
        try await onThreadOfItsOwn { [self] in
            input.fileHandleForWriting.write(Data((command + "\n").utf8))
            return try readLine()
        }
    }

    private func readLine() throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw SessionStorageError(.unavailable, "node exited") }
            buffer.append(chunk)
        }
    }

    /// Repeats `command` until it answers `expected`, for up to five seconds.
    public func eventually(_ command: String, _ expected: String) async throws -> Bool {
        for _ in 0..<500 {
            if try await send(command) == expected { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
