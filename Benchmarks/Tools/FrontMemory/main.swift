// Fills a tier's front, capped at 64 MiB, with a million distinct sessions (each read once:
// a miss, a load, a store) and reports how much the process grew (resident set, from
// /proc/self/status), as one JSON line for scripts/bench. The durable tier keeps nothing: it
// makes each session up when asked, so what grows is the front alone.
import Foundation
import MCPSessionStorage

func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    else { return 0 }
    return kilobytes * 1024
}

/// A durable tier that stores nothing and answers every read with a made-up session.
struct GeneratingStorage: SessionStorage {
    let policy = SessionPolicy()

    func session(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        SessionInfo(
            id: id, isInitialized: true, protocolVersion: "2025-06-18",
            clientInfo: ["name": "client", "version": "1.0.0"],
            clientCapabilities: ["roots": ["listChanged": true]],
            state: ["user": .string("user-\(id.rawValue.suffix(8))"), "counter": 41, "prefs": ["theme": "dark", "lang": "en"]],
            version: 1)
    }

    func sessionVersion(_ id: SessionID) async throws(SessionStorageError) -> Int64? { 1 }

    private func unsupported() -> SessionStorageError { SessionStorageError(.invalidInput, "not part of this measurement") }
    func createSession(id: SessionID?, _ fields: NewSession) async throws(SessionStorageError) -> SessionInfo { throw unsupported() }
    func updateSession(_ session: SessionInfo) async throws(SessionStorageError) -> SessionInfo { throw unsupported() }
    func touchSession(_ id: SessionID, at now: Date) async throws(SessionStorageError) { throw unsupported() }
    func deleteSession(_ id: SessionID) async throws(SessionStorageError) -> Bool { throw unsupported() }
    func stateValue(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> JSONValue? { throw unsupported() }
    func setState(_ value: JSONValue, forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 { throw unsupported() }
    func removeState(forKey key: String, in id: SessionID) async throws(SessionStorageError) -> Int64 { throw unsupported() }
    func appendEvent(_ event: NewEvent, to id: SessionID) async throws(SessionStorageError) -> SSEEvent { throw unsupported() }
    func events(in id: SessionID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] { throw unsupported() }
    func events(in id: SessionID, stream: StreamID, after eventID: Int64, limit: Int?) async throws(SessionStorageError) -> [SSEEvent] {
        throw unsupported()
    }
    func event(_ eventID: Int64, in id: SessionID) async throws(SessionStorageError) -> SSEEvent? { throw unsupported() }
    func recentEvents(in id: SessionID, limit: Int) async throws(SessionStorageError) -> [SSEEvent] { throw unsupported() }
    func deleteEvents(in id: SessionID, before eventID: Int64) async throws(SessionStorageError) -> Int { throw unsupported() }
    func lease(_ name: String, in id: SessionID) async throws(SessionStorageError) -> Lease? { throw unsupported() }
    func swapLease(_ name: String, in id: SessionID, expected: Lease?, new: Lease?) async throws(SessionStorageError) -> Bool { throw unsupported() }
    func listSessions(after cursor: SessionID?, limit: Int) async throws(SessionStorageError) -> [SessionID] { [] }
    func expireSessions(olderThan cutoff: Date) async throws(SessionStorageError) -> [SessionID] { [] }
    func sessionCount() async throws(SessionStorageError) -> Int { 0 }
    func eventCount() async throws(SessionStorageError) -> Int { 0 }
    func maintenance() async throws(SessionStorageError) {}
}

let cap = 64 << 20
let sessions = 1_000_000
var configuration = TieredSessionStorage.Configuration()
configuration.maxEntries = sessions
configuration.maxBytes = cap
configuration.maxAge = .seconds(3600)
let tiered = TieredSessionStorage(durable: GeneratingStorage(), front: configuration)
let before = residentBytes()
var peak = before
for index in 0..<sessions {
    _ = try await tiered.session(.generate())
    if index % 50_000 == 0 { peak = max(peak, residentBytes()) }
}
let after = residentBytes()
peak = max(peak, after)
let growth = peak - before
let (entries, bytes) = tiered.frontSize
print(
    #"{"name":"Front RSS growth after 1M sessions","value":\#(growth / 1024),"unit":"KiB","cap_kib":\#(cap / 1024),"ratio":\#(String(format: "%.3f", Double(growth) / Double(cap))),"entries":\#(entries),"estimated_kib":\#(bytes / 1024)}"#
)
