import Foundation
import MCPSessionStorage
import MCPSessionStorageSQLite
import Testing

@Suite("SQLite crash safety")
struct SQLiteKillTests {
    /// The helper executable, built beside the test bundle by `swift build --build-tests`.
    static var writerURL: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("SQLiteKillTestWriter")
    }

    @Test("a writer killed with SIGKILL loses no acknowledged write and leaves a clean file")
    func sigkill() async throws {
        let path = temporaryDatabasePath()
        let id = SessionID.generate()
        let process = Process()
        process.executableURL = Self.writerURL
        process.arguments = [path, id.rawValue]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Let it write for a while, then kill it mid-stream.
        try await Task.sleep(for: .milliseconds(1500))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        #expect(lines.first == "ready")
        let acked = lines.compactMap { $0.hasPrefix("ack ") ? Int($0.dropFirst(4)) : nil }
        let last = try #require(acked.last, "the writer acknowledged nothing before it was killed")
        #expect(last > 10)

        try sqlite3(path, "PRAGMA integrity_check")
        let storage = try SQLiteSessionStorage(configuration: .init(path: path))
        let session = try #require(try await storage.session(id))
        for index in 0...last {
            #expect(session.state["k\(index)"] == .int(Int64(index)), "acknowledged key k\(index) is missing")
        }
        let events = try await storage.recentEvents(in: id, limit: 1000)
        #expect(events.last.map { $0.id >= Int64(last + 1) } == true, "the last acknowledged event is missing")
    }
}
