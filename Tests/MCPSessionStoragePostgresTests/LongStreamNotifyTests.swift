import MCPSessionStorage
import MCPSessionStoragePostgres
import Testing

@Suite("Long stream ids and the attached bus", .enabled(if: PostgresTestEnvironment.shouldRun, PostgresTestEnvironment.skipReason))
struct LongStreamNotifyTests {
    /// A batch's changes go 32 to a NOTIFY, whose payload PostgreSQL caps at 8000 bytes. A
    /// request id may be up to 256 bytes of JSON, and its stream id rides in each change.
    @Test("concurrent appends on streams named by 256-byte request ids all succeed")
    func longStreamsInOneBatch() async throws {
        let schema = PostgresTestEnvironment.freshSchema()
        let durable = try PostgresTestEnvironment.storage(schema: schema, changes: try ChangeEmitter(channel: "c" + schema))
        var sessions: [SessionID] = []
        for _ in 0..<96 { sessions.append(try await durable.createSession().id) }
        let stream = try StreamID.request(.string(String(repeating: "x", count: 254)))
        let failures = await withTaskGroup(of: String?.self) { group in
            for id in sessions {
                group.addTask {
                    do {
                        _ = try await durable.appendEvent(NewEvent(stream: stream, data: 1), to: id)
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
        }
        #expect(failures.isEmpty, "\(failures.count) appends failed, e.g. \(failures.first ?? "")")
    }
}
