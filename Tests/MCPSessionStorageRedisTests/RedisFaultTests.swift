import Foundation
import MCPSessionStorage
import MCPSessionStorageRedis
import Synchronization
import Testing

/// Faults on the second Redis server (127.0.0.1:63791), which these tests stop, kill and start.
@Suite("Redis faults", .serialized, .enabled(if: RedisTestEnvironment.faults.shouldRun, Comment(rawValue: RedisTestEnvironment.faults.skipReason)))
struct RedisFaultTests {
    static let port = 63791
    static var pidFile: String {
        URL(fileURLWithPath: RedisTestEnvironment.servicesScript).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".services/redis-faults/\(port)/redis.pid").path
    }

    /// A first session, created while the whole test run loads the machine: the first call
    /// connects and loads the scripts, which can take longer than the tests' short timeout.
    static func firstSession(_ storage: RedisSessionStorage) async throws -> SessionID {
        for _ in 0..<20 {
            if let session = try? await storage.createSession() { return session.id }
        }
        return try await storage.createSession().id
    }

    @Test("calls fail promptly with unavailable while Redis is down, and the same storage heals", .timeLimit(.minutes(2)))
    func outage() async throws {
        let storage = try RedisTestEnvironment.storage(url: RedisTestEnvironment.faults.url) { $0.operationTimeout = .seconds(1) }
        let id = try await Self.firstSession(storage)
        try await RedisTestEnvironment.services("stop", "redis-faults")
        do {
            let started = ContinuousClock.now
            await #expect { try await storage.setState(1, forKey: "k", in: id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
            await #expect { try await storage.session(id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
            #expect(ContinuousClock.now - started < .seconds(5), "within the operation timeout, not hanging")
        }
        try await RedisTestEnvironment.services("start", "redis-faults")
        var healed = false
        for _ in 0..<100 where !healed {
            healed = (try? await storage.setState(2, forKey: "k", in: id)) != nil
            if !healed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(healed, "the same storage object works again")
        #expect(try await storage.stateValue(forKey: "k", in: id) == 2)
    }

    /// A Redis that stops answering (SIGSTOP: connections stay open, nothing comes back) is the
    /// case a refused connection does not cover: each call must still end at its deadline.
    @Test("calls fail with unavailable while Redis hangs (SIGSTOP), and the same storage heals after SIGCONT", .timeLimit(.minutes(1)))
    func paused() async throws {
        let storage = try RedisTestEnvironment.storage(url: RedisTestEnvironment.faults.url) { $0.operationTimeout = .seconds(1) }
        let id = try await Self.firstSession(storage)
        let pid = try String(contentsOfFile: Self.pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try await RedisTestEnvironment.run("/bin/kill", ["-STOP", pid])
        do {
            let started = ContinuousClock.now
            await #expect { try await storage.setState(1, forKey: "k", in: id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
            await #expect { try await storage.session(id) } throws: { ($0 as? SessionStorageError)?.code == .unavailable }
            #expect(ContinuousClock.now - started < .seconds(10), "answered by the deadline, not when Redis woke")
        }
        try await RedisTestEnvironment.run("/bin/kill", ["-CONT", pid])
        var healed = false
        for _ in 0..<100 where !healed {
            healed = (try? await storage.setState(2, forKey: "k", in: id)) != nil
            if !healed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(healed, "the same storage object works again")
        #expect(try await storage.stateValue(forKey: "k", in: id) == 2)
    }

    /// Redis writes a command to its append-only file before it answers, under every
    /// `appendfsync` setting; the setting decides only when the file reaches the disk. A SIGKILL
    /// ends the process, not the machine: the kernel still writes out what Redis wrote, so no
    /// setting loses an acknowledged write to it (only an OS crash or power loss shows the
    /// difference: up to a second of writes with `everysec`, up to the kernel's flush with `no`).
    @Test("Redis killed with SIGKILL loses no acknowledged write", .timeLimit(.minutes(2)), arguments: ["always", "everysec", "no"])
    func sigkill(appendfsync: String) async throws {
        try await RedisTestEnvironment.cli(Self.port, ["CONFIG", "SET", "appendfsync", appendfsync])
        // The restart below reads the configuration file again: appendfsync everysec.
        let prefix = RedisTestEnvironment.freshPrefix()
        let storage = try RedisTestEnvironment.storage(prefix: prefix, url: RedisTestEnvironment.faults.url) { $0.operationTimeout = .seconds(1) }
        let id = try await Self.firstSession(storage)
        let acknowledged = Shared<[Int]>([])
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for n in stride(from: writer, to: 100_000, by: 4) {
                            guard (try? await storage.setState(.int(Int64(n)), forKey: "k\(n)", in: id)) != nil else { return }
                            acknowledged.withLock { $0.append(n) }
                        }
                    }
                }
            }
        }
        // Killed once the writers are well under way (however loaded the machine is).
        for _ in 0..<200 where acknowledged.withLock({ $0.count }) < 100 { try await Task.sleep(for: .milliseconds(50)) }
        let pid = try String(contentsOfFile: Self.pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try await RedisTestEnvironment.run("/bin/kill", ["-KILL", pid])
        await writers.value
        try await RedisTestEnvironment.services("start", "redis-faults")
        let acked = acknowledged.withLock { $0 }
        #expect(acked.count > 20, "the writers got going before the kill")
        var session: SessionInfo?
        for _ in 0..<100 where session == nil {
            session = try? await storage.session(id)
            if session == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let state = try #require(session).state
        let lost = acked.filter { state["k\($0)"] != .int(Int64($0)) }
        #expect(lost.isEmpty, "\(lost.count) of \(acked.count) acknowledged writes were lost, e.g. \(lost.prefix(5))")
    }
}
