import Foundation
import MCPSessionStorage

extension SessionStorageConformance {
    struct Profile: Codable, Equatable, Sendable {
        var name: String
        var visits: Int
        var tags: [String]
    }

    static var stateChecks: [Check] {
        [
            Check("setState raises the version and reads back") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let version = try await storage.setState("v", forKey: "k", in: session.id)
                try expectEqual(version, 2, "returned version")
                try expectEqual(try await storage.stateValue(forKey: "k", in: session.id), "v", "value")
                try expectEqual(try await storage.session(session.id)?.version, 2, "stored version")
                try expectEqual(try await storage.session(session.id)?.state, ["k": "v"], "state in the session")
            },
            Check("every kind of JSON value round-trips exactly") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let values: [String: JSONValue] = [
                    "null": .null, "true": true, "false": false, "zero": 0,
                    "max": .int(Int64.max), "min": .int(Int64.min), "pi": 3.141592653589793, "tiny": 1e-300,
                    "text": "Grüße, 世界 🎉 \"quoted\" \\ slash / \u{0001}", "empty": "",
                    "array": [1, "two", [3.5, nil], [:]], "object": ["a": ["b": ["c": [true]]]],
                ]
                for (key, value) in values { try await storage.setState(value, forKey: key, in: session.id) }
                for (key, value) in values {
                    try expectEqual(try await storage.stateValue(forKey: key, in: session.id), value, "value under \(key)")
                }
                try expectEqual(try await storage.session(session.id)?.state, values, "whole state")
            },
            Check("an unset key reads as nil, not as JSON null") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try await storage.setState(.null, forKey: "set-to-null", in: session.id)
                try expectEqual(try await storage.stateValue(forKey: "never-set", in: session.id), nil, "unset key")
                try expectEqual(try await storage.stateValue(forKey: "set-to-null", in: session.id), .null, "null value")
            },
            Check("state calls on a missing session are sessionNotFound") { context in
                let storage = try await context.storage()
                let missing = SessionID.generate()
                try await expectError(.sessionNotFound, "setState") { try await storage.setState(1, forKey: "k", in: missing) }
                try await expectError(.sessionNotFound, "stateValue") { try await storage.stateValue(forKey: "k", in: missing) }
                try await expectError(.sessionNotFound, "removeState") { try await storage.removeState(forKey: "k", in: missing) }
                try expectEqual(try await storage.sessionCount(), 0, "sessions created by state calls")
            },
            Check("removeState removes one key and raises the version") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession(NewSession(state: ["a": 1, "b": 2]))
                let version = try await storage.removeState(forKey: "a", in: session.id)
                try expectEqual(version, 2, "version")
                try expectEqual(try await storage.session(session.id)?.state, ["b": 2], "state left")
                try expectEqual(try await storage.removeState(forKey: "absent", in: session.id), 3, "version after removing an absent key")
            },
            Check("setState replaces one key and leaves the others") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession(NewSession(state: ["a": 1, "b": 2]))
                try await storage.setState("new", forKey: "a", in: session.id)
                try expectEqual(try await storage.session(session.id)?.state, ["a": "new", "b": 2], "state")
            },
            Check("typed Codable state helpers round-trip") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let profile = Profile(name: "Ada", visits: 3, tags: ["x"])
                try await storage.setState(profile, forKey: "profile", in: session.id)
                try expectEqual(try await storage.state("profile", as: Profile.self, in: session.id), profile, "typed read")
                let loaded = try require(try await storage.session(session.id), "session")
                try expectEqual(try loaded.state("profile", as: Profile.self), profile, "typed read from SessionInfo")
                try await expectError(.invalidInput, "decoding as the wrong type") {
                    try await storage.state("profile", as: [Int].self, in: session.id)
                }
            },
            Check("reads do not raise the version") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession(NewSession(state: ["k": 1]))
                _ = try await storage.session(session.id)
                _ = try await storage.stateValue(forKey: "k", in: session.id)
                _ = try await storage.recentEvents(in: session.id, limit: 5)
                try expectEqual(try await storage.session(session.id)?.version, 1, "version after reads")
            },
            Check("versions strictly increase over mixed writes") { context in
                let storage = try await context.storage()
                var session = try await storage.createSession()
                var versions: [Int64] = [session.version]
                versions.append(try await storage.setState(1, forKey: "a", in: session.id))
                versions.append(try await storage.removeState(forKey: "a", in: session.id))
                session = try require(try await storage.session(session.id), "session")
                versions.append(try await storage.updateSession(session).version)
                versions.append(try await storage.setState(2, forKey: "b", in: session.id))
                try expectEqual(versions, [1, 2, 3, 4, 5], "versions")
            },
            Check("an oversized state value is limitExceeded and writes nothing") { context in
                let storage = try await context.storage(SessionPolicy(maxStateValueBytes: 100))
                let session = try await storage.createSession(NewSession(state: ["k": "old"]))
                try await expectError(.limitExceeded, "big value") {
                    try await storage.setState(.string(String(repeating: "x", count: 200)), forKey: "k", in: session.id)
                }
                let loaded = try require(try await storage.session(session.id), "session")
                try expectEqual(loaded.state, ["k": "old"], "state after refused write")
                try expectEqual(loaded.version, 1, "version after refused write")
                try await expectError(.limitExceeded, "big value at create") {
                    try await storage.createSession(NewSession(state: ["big": .string(String(repeating: "y", count: 200))]))
                }
                try expectEqual(try await storage.sessionCount(), 1, "sessions after refused create")
            },
            Check("the per-session state total is enforced, counting replacements once") { context in
                let storage = try await context.storage(SessionPolicy(maxStateBytesPerSession: 100))
                let session = try await storage.createSession()
                let forty = JSONValue.string(String(repeating: "a", count: 38))  // 40 bytes as JSON, plus a 1-byte key
                try await storage.setState(forty, forKey: "a", in: session.id)
                try await storage.setState(forty, forKey: "b", in: session.id)
                try await storage.setState(forty, forKey: "a", in: session.id)  // replacing: still 82 bytes
                try await expectError(.limitExceeded, "third key past the total") {
                    try await storage.setState(forty, forKey: "c", in: session.id)
                }
                try expectEqual(try await storage.session(session.id)?.state, ["a": forty, "b": forty], "state after refused write")
                _ = try await storage.removeState(forKey: "a", in: session.id)
                try await storage.setState(forty, forKey: "c", in: session.id)  // room again
                try expectEqual(try await storage.session(session.id)?.state.keys.sorted(), ["b", "c"], "keys after removal")
            },
            Check("a value at the size limit round-trips whole") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                // As large as the backend says it takes: a JSON string of exactly the limit.
                let limit = storage.policy.maxStateValueBytes
                let big = JSONValue.string(String(String(repeating: "0123456789", count: limit / 10 + 1).prefix(limit - 2)))
                try await storage.setState(big, forKey: "big", in: session.id)
                try expectEqual(try await storage.stateValue(forKey: "big", in: session.id), big, "\(limit)-byte value")
                try await expectError(.limitExceeded, "one byte more") {
                    try await storage.setState(.string(String(repeating: "x", count: limit - 1)), forKey: "bigger", in: session.id)
                }
            },
            Check("update enforces the state limits too") { context in
                let storage = try await context.storage(SessionPolicy(maxStateBytesPerSession: 50))
                var session = try await storage.createSession()
                session.state = ["a": .string(String(repeating: "a", count: 30)), "b": .string(String(repeating: "b", count: 30))]
                try await expectError(.limitExceeded, "update past the total") { try await storage.updateSession(session) }
                try expectEqual(try await storage.session(session.id)?.version, 1, "version after refused update")
            },
        ]
    }
}
