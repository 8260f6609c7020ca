// The DynamoDB backend under load, for scripts/bench: each operation at 1 and 16 callers for a
// few seconds against a DynamoDB-compatible server (moto from scripts/services), then the
// client's own cost per session read (encode, sign, decode) without the network.
//
//   DynamoDBLoad ENDPOINT SECONDS WORKDIR
//
// Prints one JSON line per figure. Writes WORKDIR/dynamodb-setup.json (the tables and the
// sessions the boto3 side uses: its own, made the same way) and WORKDIR/dynamodb-answer.json
// (the session read's answer, which botocore's cost is measured on).
import Foundation
import MCPSessionStorage
@_spi(Benchmark) import MCPSessionStorageDynamoDB
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count == 4, let seconds = Double(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: DynamoDBLoad ENDPOINT SECONDS WORKDIR\n".utf8))
    exit(2)
}
let endpoint = arguments[1]
let workdir = URL(fileURLWithPath: arguments[3])
let suffix = String(UUID().uuidString.prefix(8)).lowercased()

/// moto copies a whole table in every transaction, so the tables stay small: state and
/// sessions in one, events (20 kept per session) in another.
func storage(_ table: String, events: Int = 20) throws -> DynamoDBSessionStorage {
    var configuration = DynamoDBSessionStorage.Configuration(table: table, region: "us-east-1", endpoint: endpoint)
    configuration.credentials = .fixed(AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing"))
    configuration.createTable = true
    configuration.operationTimeout = .seconds(30)
    configuration.policy.maxEventsPerSession = events
    return try DynamoDBSessionStorage(configuration: configuration)
}

let sessions = try storage("bench-sessions-\(suffix)")
let events = try storage("bench-events-\(suffix)")
let fields = NewSession(
    isInitialized: true, protocolVersion: "2025-06-18", clientInfo: ["name": "bench", "version": "1"], metadata: ["tenant": "acme"],
    state: ["counter": 1, "profile": ["name": "Zoë"]])
var ours: [(SessionID, SessionID)] = []
var theirs: [(SessionID, SessionID)] = []
for index in 0..<32 {
    let pair = (try await sessions.createSession(fields).id, try await events.createSession(fields).id)
    if index < 16 { ours.append(pair) } else { theirs.append(pair) }
}
let setup: [String: Any] = [
    "sessions_table": sessions.configuration.table, "events_table": events.configuration.table, "keep": 20,
    "sessions": theirs.map { [$0.0.rawValue, $0.1.rawValue] },
]
try JSONSerialization.data(withJSONObject: setup).write(to: workdir.appendingPathComponent("dynamodb-setup.json"))

let message: JSONValue = ["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "info", "data": "tick 1"]]
let operations: [(String, @Sendable (Int) async throws -> Void)] = [
    ("get-session", { [ours] caller in _ = try await sessions.session(ours[caller].0) }),
    ("set-state", { [ours] caller in try await sessions.setState(42, forKey: "counter", in: ours[caller].0) }),
    ("append-event", { [ours] caller in try await events.appendEvent(NewEvent(stream: .standalone, data: message), to: ours[caller].1) }),
]

/// Operations done, counted across the callers' tasks.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

func emit(_ name: String, _ value: Double, _ unit: String) {
    print(#"{"name": "\#(name)", "value": \#(value), "unit": "\#(unit)"}"#)
}

for (name, operation) in operations {
    for callers in [1, 16] {
        let done = Counter()
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    while ContinuousClock.now < deadline {
                        try await operation(caller)
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        emit("DynamoDB \(name) c\(callers)", Double(done.value.load(ordering: .relaxed)) / elapsed, "ops/s")
    }
}

let cost = try DynamoDBClientCost.sessionRead(iterations: 20000)
try cost.answer.write(to: workdir.appendingPathComponent("dynamodb-answer.json"))
emit("DynamoDB client cost per session read", cost.perOperation / .microseconds(1), "us")
