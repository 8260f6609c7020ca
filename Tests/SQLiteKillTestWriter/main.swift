// Writes to a SQLite session store as fast as it can and prints "ack N" after each write is
// acknowledged, until it is killed. The SIGKILL test reads the acks and checks that every
// acknowledged write is in the file.
import Foundation
import MCPSessionStorage
import MCPSessionStorageSQLite

/// Writes a line straight to the pipe (no stdio buffer to lose when killed).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: SQLiteKillTestWriter PATH SESSION-ID\n".utf8))
    exit(2)
}
let storage = try SQLiteSessionStorage(configuration: .init(path: arguments[1]))
let id = try SessionID(validating: arguments[2])
_ = try await storage.createSession(id: id, NewSession())
say("ready")
var index = 0
while true {
    try await storage.setState(.int(Int64(index)), forKey: "k\(index)", in: id)
    _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: .int(Int64(index))), to: id)
    say("ack \(index)")
    index += 1
}
