// One instance of a tiered cluster over PostgreSQL, driven line by line on stdin for the
// cross-process tests. Every command answers one line on stdout.
//
//   TieredClusterNode URL SCHEMA CHANNEL INSTANCE attached|standalone
//
//   create ID                  -> ok
//   set ID KEY JSON            -> ok VERSION
//   get ID KEY                 -> value JSON | value none
//   cached ID                  -> cached yes|no
//   front                      -> front COUNT ENABLED
//   front-enabled              -> front-enabled true|false
//   get-and-check-cached ID KEY -> value JSON cached yes|no
//   await-evicted ID MS        -> evicted T | timeout      (T: CLOCK_MONOTONIC ns when seen)
//   quit
import Foundation
import Logging
import MCPSessionStorage
import MCPSessionStoragePostgres

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let arguments = CommandLine.arguments
guard arguments.count == 6 else {
    FileHandle.standardError.write(Data("usage: TieredClusterNode URL SCHEMA CHANNEL INSTANCE attached|standalone\n".utf8))
    exit(2)
}
var configuration = try PostgresSessionStorage.Configuration(url: arguments[1])
configuration.tls = .disable
configuration.schema = arguments[2]
let durable = try PostgresSessionStorage(configuration: configuration)
let bus: PostgresChangeBus = arguments[5] == "attached"
    ? try PostgresChangeBus(attachedTo: durable, channel: arguments[3], instanceID: arguments[4])
    : try PostgresChangeBus(configuration: configuration, channel: arguments[3], instanceID: arguments[4])
let storage = TieredSessionStorage(durable: durable, bus: bus)
Task { await durable.run() }
Task { await bus.run() }
Task { try await storage.run() }
while !storage.isFrontEnabled { try await Task.sleep(for: .milliseconds(10)) }
say("ready")

while let line = readLine() {
    let words = line.split(separator: " ", maxSplits: 3).map(String.init)
    do {
        switch words.first {
        case "create":
            _ = try await storage.createSession(id: try SessionID(validating: words[1]), NewSession())
            say("ok")
        case "set":
            let version = try await storage.setState(try JSONValue.decode(Data(words[3].utf8)), forKey: words[2], in: try SessionID(validating: words[1]))
            say("ok \(version)")
        case "get":
            let value = try await storage.stateValue(forKey: words[2], in: try SessionID(validating: words[1]))
            say("value " + (try value.map { String(decoding: try $0.encoded(), as: UTF8.self) } ?? "none"))
        case "cached":
            say("cached " + (storage.front.entry(try SessionID(validating: words[1])) == nil ? "no" : "yes"))
        case "front":
            say("front \(storage.front.count) \(storage.isFrontEnabled)")
        case "front-enabled":
            say("front-enabled \(storage.isFrontEnabled)")
        case "get-and-check-cached":
            let id = try SessionID(validating: words[1])
            let value = try await storage.stateValue(forKey: words[2], in: id)
            let text = try value.map { String(decoding: try $0.encoded(), as: UTF8.self) } ?? "none"
            say("value \(text) cached \(storage.front.entry(id) == nil ? "no" : "yes")")
        case "await-evicted":
            let id = try SessionID(validating: words[1])
            let deadline = ContinuousClock.now + .milliseconds(Int(words[2]) ?? 1000)
            var seen: UInt64?
            while seen == nil && ContinuousClock.now < deadline {
                if storage.front.entry(id) == nil { seen = monotonicNanoseconds() } else { await Task.yield() }
            }
            say(seen.map { "evicted \($0)" } ?? "timeout")
        case "quit":
            exit(0)
        default:
            say("error unknown command")
        }
    } catch {
        say("error \(error)")
    }
}
