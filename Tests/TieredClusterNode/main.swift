// One instance of a tiered cluster over PostgreSQL or Redis, driven line by line on stdin for
// the cross-process tests. Every command answers one line on stdout.
//
//   TieredClusterNode URL SCHEMA CHANNEL INSTANCE attached[:GAP_MS]|standalone[:GAP_MS]|none|bare
//
// URL: postgres://… (SCHEMA is the schema) or redis://… (SCHEMA is the key prefix).
// `none`: the tier without a bus; `bare`: also without a bus, and `load` writes to the
// durable storage directly, not through the tier.
//
//   create ID                  -> ok
//   set ID KEY JSON            -> ok VERSION
//   get ID KEY                 -> value JSON | value none
//   cached ID                  -> cached yes|no
//   front                      -> front COUNT ENABLED
//   front-enabled              -> front-enabled true|false
//   get-and-check-cached ID KEY -> value JSON cached yes|no
//   await-evicted ID MS        -> evicted T | timeout      (T: CLOCK_MONOTONIC ns when seen)
//   set-timed ID KEY JSON      -> ok VERSION T U           (T, U: CLOCK_MONOTONIC ns just before and after the write)
//   load SECONDS CALLERS NAME  -> ops N                    (setState on sessions NAME-0…, for SECONDS)
//   quit
import Foundation
import Logging
import MCPSessionStorage
import MCPSessionStoragePostgres
import MCPSessionStorageRedis
import ServiceLifecycle

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Writes one key of each session in a loop, one caller per session, until `duration` passes.
func runLoad(on storage: any SessionStorage, sessions ids: [SessionID], for duration: Duration) async throws -> Int {
    let end = ContinuousClock.now + duration
    return try await withThrowingTaskGroup(of: Int.self) { group in
        for id in ids {
            group.addTask {
                var ops = 0
                while ContinuousClock.now < end {
                    try await storage.setState(.int(Int64(ops)), forKey: "counter", in: id)
                    ops += 1
                }
                return ops
            }
        }
        return try await group.reduce(0, +)
    }
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let arguments = CommandLine.arguments
guard arguments.count == 6 else {
    FileHandle.standardError.write(
        Data("usage: TieredClusterNode URL SCHEMA CHANNEL INSTANCE attached[:GAP_MS]|standalone[:GAP_MS]|none|bare\n".utf8))
    exit(2)
}
let mode = arguments[5].split(separator: ":")
let gap = Duration.milliseconds(mode.count == 2 ? Int(mode[1]) ?? 0 : 0)
let (channel, instance) = (arguments[3], arguments[4])
let attached = mode[0] == "attached" ? try ChangeEmitter(instanceID: instance, channel: channel, minimumGap: gap) : nil
let durable: any SessionStorage & Service
let bus: (any ChangeBus & Service)?
if arguments[1].hasPrefix("redis") {
    var configuration = try RedisSessionStorage.Configuration(url: arguments[1])
    configuration.keyPrefix = arguments[2]
    durable = try RedisSessionStorage(configuration: configuration, changes: attached)
    switch (mode[0], attached) {
    case ("attached", let changes?): bus = try RedisChangeBus(configuration: configuration, changes: changes)
    case ("standalone", _):
        bus = try RedisChangeBus(
            configuration: configuration, channel: channel, instanceID: instance, minimumGap: mode.count == 2 ? gap : .milliseconds(10))
    default: bus = nil
    }
} else {
    var configuration = try PostgresSessionStorage.Configuration(url: arguments[1])
    configuration.tls = .disable
    configuration.schema = arguments[2]
    durable = try PostgresSessionStorage(configuration: configuration, changes: attached)
    switch (mode[0], attached) {
    case ("attached", let changes?): bus = try PostgresChangeBus(configuration: configuration, changes: changes)
    case ("standalone", _):
        bus = try PostgresChangeBus(
            configuration: configuration, channel: channel, instanceID: instance, minimumGap: mode.count == 2 ? gap : .milliseconds(10))
    default: bus = nil
    }
}
let storage = TieredSessionStorage(durable: durable, bus: bus)
Task { try? await durable.run() }
if let bus { Task { try? await bus.run() } }
let readyBy = ContinuousClock.now + .seconds(30)
while !storage.isFrontEnabled {
    guard ContinuousClock.now < readyBy else {
        say("error the bus did not connect within 30 seconds")
        exit(1)
    }
    try await Task.sleep(for: .milliseconds(10))
}
say("ready")

while let line = readLine() {
    let words = line.split(separator: " ", maxSplits: 3).map(String.init)
    do {
        switch words.first {
        case "create":
            _ = try await storage.createSession(id: try SessionID(validating: words[1]), NewSession())
            say("ok")
        case "set":
            let version = try await storage.setState(
                try JSONValue.decode(Data(words[3].utf8)), forKey: words[2], in: try SessionID(validating: words[1]))
            say("ok \(version)")
        case "get":
            let value = try await storage.stateValue(forKey: words[2], in: try SessionID(validating: words[1]))
            say("value " + (try value.map { String(decoding: try $0.encoded(), as: UTF8.self) } ?? "none"))
        case "cached":
            say("cached " + (storage.isCached(try SessionID(validating: words[1])) ? "yes" : "no"))
        case "front":
            say("front \(storage.frontSize.entries) \(storage.isFrontEnabled)")
        case "front-enabled":
            say("front-enabled \(storage.isFrontEnabled)")
        case "get-and-check-cached":
            let id = try SessionID(validating: words[1])
            let value = try await storage.stateValue(forKey: words[2], in: id)
            let text = try value.map { String(decoding: try $0.encoded(), as: UTF8.self) } ?? "none"
            say("value \(text) cached \(storage.isCached(id) ? "yes" : "no")")
        case "await-evicted":
            let id = try SessionID(validating: words[1])
            let deadline = ContinuousClock.now + .milliseconds(Int(words[2]) ?? 1000)
            var seen: UInt64?
            while seen == nil && ContinuousClock.now < deadline {
                if !storage.isCached(id) { seen = monotonicNanoseconds() } else { try await Task.sleep(for: .microseconds(20)) }
            }
            say(seen.map { "evicted \($0)" } ?? "timeout")
        case "set-timed":
            let started = monotonicNanoseconds()
            let version = try await storage.setState(
                try JSONValue.decode(Data(words[3].utf8)), forKey: words[2], in: try SessionID(validating: words[1]))
            say("ok \(version) \(started) \(monotonicNanoseconds())")
        case "load":
            let (seconds, callers, name) = (Int(words[1]) ?? 5, Int(words[2]) ?? 8, words[3])
            let ids = try (0..<callers).map { try SessionID(validating: "\(name)-\($0)") }
            let target: any SessionStorage = mode[0] == "bare" ? durable : storage
            for id in ids { _ = try? await target.createSession(id: id, NewSession()) }
            say("ops \(try await runLoad(on: target, sessions: ids, for: .seconds(seconds)))")
        case "quit":
            exit(0)
        default:
            say("error unknown command")
        }
    } catch {
        say("error \(error)")
    }
}
