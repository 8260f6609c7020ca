// Fills a front capped at 64 MiB with a million distinct sessions and reports how much the
// process grew (resident set, from /proc/self/status), as one JSON line for scripts/bench.
import Foundation
import MCPSessionStorage

func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    else { return 0 }
    return kilobytes * 1024
}

let cap = 64 << 20
let sessions = 1_000_000
let front = SessionCache(maxEntries: sessions, maxBytes: cap, maxAge: .seconds(3600))
let before = residentBytes()
var peak = before
for index in 0..<sessions {
    front.store(SessionInfo(
        id: .generate(), isInitialized: true, protocolVersion: "2025-06-18",
        clientInfo: ["name": "client", "version": "1.0.0"],
        clientCapabilities: ["roots": ["listChanged": true]],
        state: ["user": .string("user-\(index)"), "counter": .int(Int64(index)), "prefs": ["theme": "dark", "lang": "en"]],
        version: 1))
    if index % 50_000 == 0 { peak = max(peak, residentBytes()) }
}
let after = residentBytes()
peak = max(peak, after)
let growth = peak - before
print(#"{"name":"Front RSS growth after 1M sessions","value":\#(growth / 1024),"unit":"KiB","cap_kib":\#(cap / 1024),"ratio":\#(String(format: "%.3f", Double(growth) / Double(cap))),"entries":\#(front.count),"estimated_kib":\#(front.bytes / 1024)}"#)
