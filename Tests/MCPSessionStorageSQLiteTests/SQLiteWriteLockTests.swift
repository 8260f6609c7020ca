import Foundation
import MCPSessionStorage
import Testing

@testable import MCPSessionStorageSQLite

@Suite("SQLite writes and the file's lock")
struct SQLiteWriteLockTests {
    /// A write runs on the calling task only when nothing can make it wait. One that finds the
    /// file locked by another process goes to GRDB's writer queue, a thread of its own, and
    /// waits there (within the busy timeout), never on one of the cooperative pool's threads.
    @Test("a write that finds the file locked waits on the writer's own thread, then succeeds", .timeLimit(.minutes(1)))
    func lockedFileQueuesTheWrite() async throws {
        let path = temporaryDatabasePath()
        let storage = try SQLiteSessionStorage(configuration: .init(path: path))
        let id = try await storage.createSession().id
        try await storage.setState("free", forKey: "k", in: id)
        #expect(storage.queuedWrites.load(ordering: .relaxed) == 0, "uncontended writes run at once")

        // Another process holds the file's write lock for a second.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        holder.arguments = [path, "BEGIN IMMEDIATE;", ".shell echo locked", ".shell sleep 1", "COMMIT;"]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        #expect(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).contains("locked"))

        let started = ContinuousClock.now
        let version = try await storage.setState("after the lock", forKey: "k", in: id)
        #expect(ContinuousClock.now - started > .milliseconds(200), "the write waited for the lock")
        #expect(storage.queuedWrites.load(ordering: .relaxed) == 1, "and it waited on the writer's queue")
        #expect(version == 3)
        #expect(try await storage.stateValue(forKey: "k", in: id) == "after the lock")
        holder.waitUntilExit()
    }

    /// With `synchronous = .full` every commit waits for the disk (fsync): such writes never
    /// run on the caller's thread of the cooperative pool.
    @Test("with synchronous FULL every write runs on the writer's queue")
    func fullSynchronousWritesQueue() async throws {
        var configuration = SQLiteSessionStorage.Configuration(path: temporaryDatabasePath())
        configuration.synchronous = .full
        let storage = try SQLiteSessionStorage(configuration: configuration)
        let id = try await storage.createSession().id
        try await storage.setState(1, forKey: "k", in: id)
        #expect(storage.queuedWrites.load(ordering: .relaxed) == 2)
    }

    /// Writes that must wait for another process's lock do not hold the cooperative pool's
    /// threads (as many as cores): work started meanwhile finishes long before the lock is
    /// released. Run inline, as writes once were, eight such writes held every pool thread until
    /// the lock went.
    @Test("writes waiting for another process's lock leave the cooperative pool free", .timeLimit(.minutes(1)))
    func lockedFileLeavesThePoolFree() async throws {
        let path = temporaryDatabasePath()
        let storage = try SQLiteSessionStorage(configuration: .init(path: path))
        var ids: [SessionID] = []
        for _ in 0..<8 { ids.append(try await storage.createSession().id) }
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        holder.arguments = [path, "BEGIN IMMEDIATE;", ".shell echo locked", ".shell sleep 3", "COMMIT;"]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        #expect(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).contains("locked"))
        let locked = ContinuousClock.now

        let writes = Task {
            try await withThrowingTaskGroup(of: Int64.self) { group in
                for id in ids { group.addTask { try await storage.setState("v", forKey: "k", in: id) } }
                return try await group.reduce(0, +)
            }
        }
        try await Task.sleep(for: .milliseconds(100))  // the writes are waiting now
        // Work that needs pool threads, started while the writes wait.
        let finished = await withTaskGroup(of: ContinuousClock.Instant.self) { group in
            for _ in 0..<4 { group.addTask { ContinuousClock.now } }
            return await group.reduce(locked) { max($0, $1) }
        }
        #expect(finished - locked < .seconds(2), "work on the pool waited \(finished - locked) for writes blocked on the lock")
        #expect(try await writes.value == 8 * 2, "every write got through once the lock was released")
        holder.waitUntilExit()
    }
}
