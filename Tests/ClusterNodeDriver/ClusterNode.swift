import Foundation
import MCPSessionStorage

/// One `TieredClusterNode` process, driven line by line.
public final class ClusterNode {
    public let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer = Data()

    /// Starts a node on the storage at `url` (PostgreSQL or Redis) under `schema` (a schema, or
    /// a key prefix), and waits until its bus is connected.
    public init(url: String, schema: String, channel: String, instance: String, mode: String = "attached") throws {
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
    public func send(_ command: String) throws -> String {
        input.fileHandleForWriting.write(Data((command + "\n").utf8))
        return try readLine()
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
            if try send(command) == expected { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
