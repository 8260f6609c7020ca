import Foundation
@_spi(Backend) import MCPSessionStorage
import Testing

@testable import MCPSessionStoragePostgres

@Suite("PostgreSQL change bus")
struct ChangeBusPayloadTests {
    @Test("changes that pile up while nothing can send are dropped past the cap, and their numbers skipped")
    func overflow() async throws {
        // Never run: nothing drains the queue, as when the database is unreachable.
        let bus = try PostgresChangeBus(configuration: try .init(url: "postgres://u@127.0.0.1/db"), instanceID: "stuck", minimumGap: .zero)
        let id = try SessionID(validating: "s")
        for version in 1...(ChangeEmitter.maxQueued + 1) { bus.publish(.changed(id, version: Int64(version))) }
        bus.publish(.deleted(id))
        guard case .send(let payloads) = bus.changes.next() else {
            Issue.record("nothing to send")
            return
        }
        let messages = payloads.flatMap { $0.split(separator: "\n") }.compactMap(ChangeMessageText.decode)
        // The first maxQueued were dropped unsent, so the next messages sent show the hole.
        #expect(messages.map(\.change) == [.changed(id, version: Int64(ChangeEmitter.maxQueued) + 1), .deleted(id)])
        #expect(messages.first?.delivery == .sequenced(UInt64(ChangeEmitter.maxQueued) + 1))
    }

    @Test("names that would break SQL or messages are refused")
    func badNames() throws {
        let configuration = try PostgresSessionStorage.Configuration(url: "postgres://u@127.0.0.1/db")
        #expect(throws: SessionStorageError.self) { try PostgresChangeBus(configuration: configuration, channel: "bad; channel") }
        #expect(throws: SessionStorageError.self) { try PostgresChangeBus(configuration: configuration, instanceID: "a|b") }
    }
}
