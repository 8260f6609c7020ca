// Runs each benchmarked operation once, on the sessions the Redis benchmarks just used, so that
// scripts/bench can capture with MONITOR the exact commands our storage sends (the EVALSHA with
// its keys and arguments) and have redis-benchmark repeat them: the limit of one Redis on our own
// scripts. The operation being captured is always the last command sent under its key prefix.
//
//   RedisCommands REDIS_URL
import Foundation
import MCPSessionStorage
import MCPSessionStorageRedis

let url = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "redis://127.0.0.1:63790"
let id = try SessionID(validating: "0")
let stream = try StreamID.request(3)
let payload: JSONValue = ["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "info", "data": "tick 1"]]

for callers in [1, 16] {
    for operation in ["get_session", "set_state", "append_event", "replay_100"] {
        var configuration = try RedisSessionStorage.Configuration(url: url)
        configuration.keyPrefix = "bench_\(operation)_c\(callers)"
        let storage = try RedisSessionStorage(configuration: configuration)
        // A benchmark the run filtered out left no session: nothing of it to capture.
        guard try await storage.session(id) != nil else { continue }
        switch operation {
        case "get_session": _ = try await storage.session(id)
        case "set_state": _ = try await storage.setState(42, forKey: "counter", in: id)
        case "append_event": _ = try await storage.appendEvent(NewEvent(stream: stream, data: payload), to: id)
        default:
            // The benchmark replays its stream after the session's first event.
            guard let first = try await storage.recentEvents(in: id, limit: 1000).first?.id else {
                FileHandle.standardError.write(Data("session \(id) under \(configuration.keyPrefix) has no events\n".utf8))
                exit(1)
            }
            let events = try await storage.events(in: id, after: first)
            precondition(!events.isEmpty, "the replay returned nothing")
        }
    }
}
