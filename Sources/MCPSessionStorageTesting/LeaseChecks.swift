import Foundation
import MCPSessionStorage

extension SessionStorageConformance {
    static var leaseChecks: [Check] {
        [
            Check("a lease is taken, renewed and released by compare-and-swap only") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let mine = Lease(holder: "instance-a", generation: 1)
                try expectEqual(try await storage.lease("call:1", in: session.id), nil, "a lease nobody took")
                try expect(try await storage.swapLease("call:1", in: session.id, expected: nil, new: nil), "nil to nil when nobody holds it")
                try expect(try await storage.swapLease("call:1", in: session.id, expected: nil, new: mine), "taking a free lease")
                try expectEqual(try await storage.lease("call:1", in: session.id), mine, "the lease taken")
                try expect(
                    !(try await storage.swapLease("call:1", in: session.id, expected: nil, new: Lease(holder: "b", generation: 1))),
                    "taking a held lease")
                try expect(!(try await storage.swapLease("call:1", in: session.id, expected: nil, new: nil)), "nil to nil when someone holds it")
                try expect(try await storage.swapLease("call:1", in: session.id, expected: mine, new: mine.renewed), "renewing")
                try expect(
                    !(try await storage.swapLease("call:1", in: session.id, expected: mine, new: mine.renewed)), "renewing from a stale generation")
                try expect(
                    !(try await storage.swapLease("call:1", in: session.id, expected: Lease(holder: "b", generation: 2), new: nil)),
                    "releasing someone else's")
                try expectEqual(try await storage.lease("call:1", in: session.id), mine.renewed, "after the refused swaps")
                try expect(try await storage.swapLease("call:1", in: session.id, expected: mine.renewed, new: nil), "releasing")
                try expectEqual(try await storage.lease("call:1", in: session.id), nil, "after release")
            },
            Check("leases are per session and per name, and go with their session") { context in
                let storage = try await context.storage()
                let (one, two) = (try await storage.createSession(), try await storage.createSession())
                let lease = Lease(holder: "a", generation: 1)
                try expect(try await storage.swapLease("x", in: one.id, expected: nil, new: lease), "one's x")
                try expect(try await storage.swapLease("y", in: one.id, expected: nil, new: lease), "one's y")
                try expect(try await storage.swapLease("x", in: two.id, expected: nil, new: lease), "two's x")
                try expectEqual(try await storage.session(one.id)?.version, 1, "a lease is not session data: version")
                try await storage.deleteSession(one.id)
                _ = try await storage.createSession(id: one.id, NewSession())
                try expectEqual(try await storage.lease("x", in: one.id), nil, "a recreated session's lease")
                try expectEqual(try await storage.lease("x", in: two.id), lease, "another session's lease")
            },
            Check("of concurrent takes of one lease, exactly one wins") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for contender in 0..<8 {
                        group.addTask {
                            try await storage.swapLease("call", in: session.id, expected: nil, new: Lease(holder: "c\(contender)", generation: 1))
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                try expectEqual(wins, 1, "winners")
            },
            Check("leases of a missing session are sessionNotFound; bad names are invalidInput") { context in
                let storage = try await context.storage()
                let missing = SessionID.generate()
                try await expectError(.sessionNotFound, "lease") { try await storage.lease("x", in: missing) }
                try await expectError(.sessionNotFound, "swap") {
                    try await storage.swapLease("x", in: missing, expected: nil, new: Lease(holder: "a", generation: 1))
                }
                try await expectError(.sessionNotFound, "release") {
                    try await storage.swapLease("x", in: missing, expected: Lease(holder: "a", generation: 1), new: nil)
                }
                let session = try await storage.createSession()
                try await expectError(.invalidInput, "empty name") { try await storage.lease("", in: session.id) }
                try await expectError(.invalidInput, "NUL holder") {
                    try await storage.swapLease("x", in: session.id, expected: nil, new: Lease(holder: "a\0b", generation: 1))
                }
            },
        ]
    }
}
