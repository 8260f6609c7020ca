import Foundation
import MCPSessionStorage
import Testing

@testable import MCPSessionStoragePostgres

@Suite("PostgreSQL change bus payloads")
struct ChangeBusPayloadTests {
    @Test("queued changes pack into NOTIFY payloads under 7000 bytes, numbered without gaps")
    func packing() throws {
        let bus = try PostgresChangeBus(configuration: try .init(url: "postgres://u@127.0.0.1/db"), instanceID: "packer")
        let longID = try SessionID(validating: String(repeating: "x", count: 128))
        let stream = try StreamID(validating: String(repeating: "s", count: 256))
        let changes = (0..<200).map { index -> SessionChange in
            index % 2 == 0 ? .eventAppended(longID, stream: stream, eventID: Int64(index)) : .sessionChanged(longID, version: Int64(index))
        }
        let first = bus.payloads(for: changes)
        let second = bus.payloads(for: Array(changes.prefix(3)))
        #expect(first.count > 1)
        for payload in first + second { #expect(payload.utf8.count <= PostgresChangeBus.maxPayload) }
        let messages = (first + second).flatMap { $0.split(separator: "\n") }.compactMap(ChangeMessageText.decode)
        #expect(messages.count == 203)
        #expect(messages.map(\.sequence) == Array(1...203))
        #expect(messages.prefix(200).map(\.change) == changes)
    }

    @Test("changes that pile up while nothing can send are dropped past the cap, and their numbers skipped")
    func overflow() async throws {
        // Never run: nothing drains the queue, as when the database is unreachable.
        let bus = try PostgresChangeBus(configuration: try .init(url: "postgres://u@127.0.0.1/db"), instanceID: "stuck")
        let id = try SessionID(validating: "s")
        for version in 1...(PostgresChangeBus.maxQueued + 1) { await bus.publish(.sessionChanged(id, version: Int64(version))) }
        let next = bus.payloads(for: [.sessionDeleted(id)]).flatMap { $0.split(separator: "\n") }.compactMap(ChangeMessageText.decode)
        // The first maxQueued were dropped unsent, so the next message sent shows the hole.
        #expect(next.map(\.sequence) == [UInt64(PostgresChangeBus.maxQueued) + 1])
    }

    @Test("names that would break SQL or messages are refused")
    func badNames() throws {
        let configuration = try PostgresSessionStorage.Configuration(url: "postgres://u@127.0.0.1/db")
        #expect(throws: SessionStorageError.self) { try PostgresChangeBus(configuration: configuration, channel: "bad; channel") }
        #expect(throws: SessionStorageError.self) { try PostgresChangeBus(configuration: configuration, instanceID: "a|b") }
    }
}
