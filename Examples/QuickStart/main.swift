import MCPSessionStorage
import MCPSessionStorageSQLite

// Sessions in a SQLite file: survives restarts, the default for one instance.
var configuration = SQLiteSessionStorage.Configuration(path: "quickstart.db")
configuration.policy.sessionTTL = .seconds(600)  // idle sessions expire after 10 minutes
let storage = try SQLiteSessionStorage(configuration: configuration)

let session = try await storage.createSession(NewSession(protocolVersion: "2025-11-25"))
try await storage.setState(["theme": "dark"], forKey: "prefs", in: session.id)
let event = try await storage.appendEvent(NewEvent(stream: .standalone, data: ["jsonrpc": "2.0", "method": "ping"]), to: session.id)

print(try await storage.stateValue(forKey: "prefs", in: session.id) ?? "none")  // {"theme":"dark"}
print(try await storage.events(in: session.id, stream: .standalone, after: 0, limit: nil).map(\.id) == [event.id])  // true
