import Foundation
import Testing

@testable import MCPSessionStoragePostgres

/// `scripts/bench` compares our PostgreSQL figures with pgbench running `Benchmarks/pgbench/*.sql`.
/// The comparison is fair only while those scripts are our statements, so check that they are.
@Suite("pgbench scripts")
struct PgbenchScriptTests {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Benchmarks/pgbench")

    /// `sql` with each `$n` replaced as pgbench sees it: a variable, or a literal NULL (pgbench
    /// variables cannot be NULL).
    func expected(_ sql: String, _ replacements: [Int: String]) -> String {
        replacements.keys.sorted(by: >).reduce(sql) { $0.replacingOccurrences(of: "$\($1)", with: replacements[$1]!) } + ";"
    }

    func script(_ name: String) throws -> String {
        try String(contentsOf: Self.folder.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("each pgbench script runs exactly the statement it is compared with")
    func scriptsMatchStatements() throws {
        #expect(try script("get-session.sql") == expected(SelectSession.sql, [1: ":client_id"]))
        #expect(try script("set-state.sql") == expected(SetState.sql, [1: ":client_id", 2: ":key", 3: ":value", 4: ":size", 5: ":now", 6: ":limit"]))
        #expect(
            try script("append-event.sql")
                == expected(
                    AppendEvent.sql, [1: ":client_id", 2: ":now", 3: ":stream", 4: "NULL", 5: ":data", 6: "NULL", 7: ":keep"]))
        #expect(try script("replay-100.sql") == expected(EventsAfter.sql, [1: ":client_id", 2: ":cursor", 3: "NULL"]))
    }
}
