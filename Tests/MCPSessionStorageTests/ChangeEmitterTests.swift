import Foundation
@_spi(Backend) import MCPSessionStorage
import Testing

@Suite("Change emitter")
struct ChangeEmitterTests {
    @Test("queued changes pack into NOTIFY payloads under 7000 bytes, numbered without gaps")
    func packing() throws {
        var sequence: UInt64 = 0
        let longID = try SessionID(validating: String(repeating: "x", count: 128))
        let stream = try StreamID(validating: String(repeating: "s", count: 256))
        let changes = (0..<200).map { index -> SessionChange in
            index % 2 == 0 ? .eventAppended(longID, stream: stream, eventID: Int64(index)) : .changed(longID, version: Int64(index))
        }
        let first = ChangeEmitter.payloads(for: changes, origin: "packer", sequence: &sequence)
        let second = ChangeEmitter.payloads(for: Array(changes.prefix(3)), origin: "packer", sequence: &sequence)
        #expect(first.count > 1)
        for payload in first + second { #expect(payload.utf8.count <= ChangeEmitter.maxPayload) }
        let messages = (first + second).flatMap { $0.split(separator: "\n") }.compactMap(ChangeMessageText.decode)
        #expect(messages.count == 203)
        #expect(messages.map(\.sequence) == Array(1...203))
        #expect(messages.prefix(200).map(\.change) == changes)
    }

    @Test("with a gap, a write carries its change only when the bus was quiet for the gap, and the queue along with it")
    func carrying() throws {
        let emitter = try ChangeEmitter(instanceID: "me", channel: "c", minimumGap: .seconds(3600))
        let id = try SessionID(validating: "s")
        // Quiet since it was made: the first write goes inline, and nothing is queued to carry.
        let first = try #require(emitter.claim(carrying: true))
        #expect(first.lines.isEmpty)
        // Within the gap: written plainly, the changes queue for the sender, merged.
        #expect(emitter.claim(carrying: true) == nil)
        emitter.enqueue([.changed(id, version: 2), .changed(id, version: 3)])
        guard case .wait = emitter.next() else {
            Issue.record("the sender should wait out the gap")
            return
        }
        // Without a gap every write carries its change, a batch's too.
        #expect(try ChangeEmitter(instanceID: "me", channel: "c").claim(carrying: false) != nil)
    }

    @Test(
        "a write past the gap carries the queue numbered (a batch, which cannot, waits); if it sends nothing the queue comes back under the same numbers"
    )
    func unclaiming() throws {
        let emitter = try ChangeEmitter(instanceID: "me", channel: "c", minimumGap: .milliseconds(1))
        let id = try SessionID(validating: "s")
        emitter.enqueue([.changed(id, version: 2), .eventsDeleted(id)])
        Thread.sleep(forTimeInterval: 0.005)
        // A batch cannot carry the queue, so it leaves the NOTIFY to a write that can.
        #expect(emitter.claim(carrying: false) == nil)
        let claim = try #require(emitter.claim(carrying: true))
        let carried = claim.lines.split(separator: "\n").compactMap(ChangeMessageText.decode)
        #expect(carried.map(\.sequence) == [1, 2])
        #expect(carried.map(\.change) == [.changed(id, version: 2), .eventsDeleted(id)])
        #expect(claim.lines.hasSuffix("\n"))
        emitter.unclaim(claim)
        Thread.sleep(forTimeInterval: 0.005)
        guard case .send(let payloads) = emitter.next() else {
            Issue.record("the queue was not given back")
            return
        }
        #expect(payloads.flatMap { $0.split(separator: "\n") }.compactMap(ChangeMessageText.decode) == carried)

        // Numbers handed out after a claim cannot be taken back: they stay skipped.
        emitter.enqueue([.deleted(id)])
        Thread.sleep(forTimeInterval: 0.005)
        let stale = try #require(emitter.claim(carrying: true))
        emitter.enqueue([.changed(id, version: 9)])
        Thread.sleep(forTimeInterval: 0.005)
        guard case .send(let later) = emitter.next() else {
            Issue.record("nothing to send")
            return
        }
        emitter.unclaim(stale)
        #expect(later.flatMap { $0.split(separator: "\n") }.compactMap(ChangeMessageText.decode).map(\.sequence) == [4])
        #expect(emitter.next() == .idle)
    }
}

extension ChangeMessage {
    /// The message's number; 0 for a transactional one.
    var sequence: UInt64 {
        if case .sequenced(let number) = delivery { return number }
        return 0
    }
}
