// The fastest PostgresNIO gets on one of pgbench's scripts: the floor under what any storage
// built on it can reach, printed beside pgbench by `scripts/bench`.
//
//   PostgresNIOFloor URL SCHEMA SCRIPT CALLERS SECONDS [--plain-task] [NAME=VALUE ...]  -> ops/s
//
// SCRIPT is one of Benchmarks/pgbench/*.sql. Its `:name` variables become `$n` parameters
// sent untyped with the values given (`:client_id` is the caller's number), so PostgreSQL
// infers their types as it does for `pgbench -M prepared`. Each caller has its own
// `PostgresConnection` (no pool) and runs on that connection's event loop, so a query costs
// no thread hop: nothing built on PostgresNIO can do less per query. With `--plain-task` the
// callers run on the default executor instead, as a storage's callers do: each query then
// hops to the event loop and back, which no storage can spare a caller that is not already
// on that loop.
import Foundation
import Logging
// Only for its `EventLoopExecutor`: the floor uses nothing else of the storage.
@_spi(Benchmark) import MCPSessionStorageRedis
import NIOCore
import NIOPosix
import PostgresNIO

/// A value sent as text of no stated type, as pgbench sends its variables.
struct Untyped: PostgresEncodable {
    static var psqlType: PostgresDataType { PostgresDataType(0) }
    static var psqlFormat: PostgresFormat { .text }
    let text: String

    func encode<Encoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<Encoder>) {
        buffer.writeString(text)
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 6, let url = URL(string: arguments[1]), let callers = Int(arguments[4]), let seconds = Double(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: PostgresNIOFloor URL SCHEMA SCRIPT CALLERS SECONDS [NAME=VALUE ...]\n".utf8))
    exit(2)
}
let plainTask = arguments.dropFirst(6).contains("--plain-task")
var values: [String: String] = [:]
for pair in arguments.dropFirst(6) where pair != "--plain-task" {
    let parts = pair.split(separator: "=", maxSplits: 1)
    values[String(parts[0])] = parts.count == 2 ? String(parts[1]) : ""
}

/// The script as a prepared statement: `:name` → `$n`, numbering names in order of first use
/// (`::type` casts stay as they are).
let (script, names): (String, [String]) = try {
    var sql = try String(contentsOfFile: arguments[3], encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    if sql.hasSuffix(";") { sql.removeLast() }
    var names: [String] = []
    sql = sql.replacing(/(:?):([a-z_]+)/) { match in
        if match.output.1 == ":" { return String(match.output.0) }
        let name = String(match.output.2)
        if !names.contains(name) { names.append(name) }
        return "$\(names.firstIndex(of: name)! + 1)"
    }
    return (sql, names)
}()

/// One run of the script, prepared once per connection as pgbench's `-M prepared` does.
struct Script: PostgresPreparedStatement {
    static var sql: String { script }
    typealias Row = Void
    let values: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values { try bindings.append(Untyped(text: value)) }
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

var logger = Logger(label: "floor")
logger.logLevel = .error
var configuration = PostgresConnection.Configuration(
    host: url.host ?? "127.0.0.1", port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
    database: String(url.path.dropFirst()), tls: .disable)
configuration.options.additionalStartupParameters = [("search_path", arguments[2])]

let loops = MultiThreadedEventLoopGroup.singleton
var connections: [PostgresConnection] = []
for caller in 0..<callers {
    connections.append(try await PostgresConnection.connect(on: loops.next(), configuration: configuration, id: caller, logger: logger))
}
let fixed = values
let deadline = ContinuousClock.now + .seconds(seconds)
let total = try await withThrowingTaskGroup(of: Int.self) { group in
    for (caller, connection) in connections.enumerated() {
        group.addTask(executorPreference: plainTask ? nil : EventLoopExecutor(connection.eventLoop)) {
            let run = Script(values: names.map { $0 == "client_id" ? "\(caller)" : fixed[$0] ?? "" })
            var done = 0
            while ContinuousClock.now < deadline {
                for try await _ in try await connection.execute(run, logger: logger) {}
                done += 1
            }
            return done
        }
    }
    var total = 0
    for try await done in group { total += done }
    return total
}
for connection in connections { try await connection.close().get() }
print(Int(Double(total) / seconds))
