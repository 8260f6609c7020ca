import Foundation
import MCPSessionStorage

extension SessionStorageConformance {
    static var expiryChecks: [Check] {
        [
            Check("expiry removes idle sessions with their events and returns their ids") { context in
                let storage = try await context.storage()
                let old = try await storage.createSession()
                _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: 1), to: old.id)
                let cutoff = Date().addingTimeInterval(1)
                let removed = try await storage.expireSessions(olderThan: cutoff)
                try expectEqual(removed, [old.id], "expired ids")
                try expect(try await storage.session(old.id) == nil, "expired session still readable")
                try expectEqual(try await storage.eventCount(), 0, "events of expired sessions")
            },
            Check("expiry keeps sessions active after the cutoff") { context in
                let storage = try await context.storage(SessionPolicy(activityWriteInterval: .zero))
                let idle = try await storage.createSession()
                let active = try await storage.createSession()
                let cutoff = Date().addingTimeInterval(60)
                try await storage.touchSession(active.id, at: cutoff.addingTimeInterval(1))
                try expectEqual(try await storage.expireSessions(olderThan: cutoff), [idle.id], "expired ids")
                try expect(try await storage.session(active.id) != nil, "active session was expired")
                try expectEqual(try await storage.expireSessions(olderThan: cutoff), [], "second pass")
            },
            Check("writes count as activity") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try await Task.sleep(for: .milliseconds(20))
                let beforeWrite = Date()
                try await storage.setState(1, forKey: "k", in: session.id)
                let loaded = try require(try await storage.session(session.id), "session")
                try expect(
                    loaded.lastActivity >= beforeWrite.addingTimeInterval(-0.002),
                    "lastActivity \(loaded.lastActivity) not moved by a write at \(beforeWrite)")
            },
            Check("the cleanup service expires sessions past the TTL") { context in
                let storage = try await context.storage(SessionPolicy(sessionTTL: .seconds(60)))
                let session = try await storage.createSession()
                let service = SessionCleanupService(storage: storage)
                try expectEqual(try await service.runOnce(), [], "pass before the TTL")
                try expectEqual(try await service.runOnce(now: Date().addingTimeInterval(61)), [session.id], "pass after the TTL")
            },
        ]
    }

    static var inputChecks: [Check] {
        [
            Check("malformed session ids are rejected before any backend") { _ in
                let bad = ["", String(repeating: "a", count: 129), "has space", "nul\0", "tab\t", "new\nline", "é", "del\u{7F}"]
                for text in bad {
                    try await expectError(.invalidInput, "SessionID(\(text.debugDescription))") { try SessionID(validating: text) }
                }
                _ = try SessionID(validating: String(repeating: "~", count: 128))
            },
            Check("ids with quotes and SQL fragments are stored verbatim") { context in
                let storage = try await context.storage()
                let texts = [#"'";DROP/**/TABLE/**/sessions;--"#, #"a\b"c'd`e$1%_"#, "*", "{}[]"]
                for text in texts {
                    let id = try SessionID(validating: text)
                    _ = try await storage.createSession(id: id, NewSession(state: ["k": .string(text)]))
                    try expectEqual(try await storage.stateValue(forKey: "k", in: id), .string(text), "state under id \(text)")
                }
                try expectEqual(Set(try await storage.allSessionIDs().map(\.rawValue)), Set(texts), "listed ids")
                try expect(try await storage.session(try SessionID(validating: "%")) == nil, "a LIKE wildcard id matched another session")
            },
            Check("keys: empty and NUL are invalidInput, too long is limitExceeded, odd ones work") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try await expectError(.invalidInput, "empty key") { try await storage.setState(1, forKey: "", in: session.id) }
                try await expectError(.invalidInput, "NUL key") { try await storage.setState(1, forKey: "a\0b", in: session.id) }
                try await expectError(.limitExceeded, "long key") {
                    try await storage.setState(1, forKey: String(repeating: "k", count: storage.policy.maxKeyBytes + 1), in: session.id)
                }
                try await expectError(.invalidInput, "empty key read") { try await storage.stateValue(forKey: "", in: session.id) }
                let odd = [#"it's "quoted""#, "日本語", "a.b[0]", "$.path", "%_"]
                for key in odd { try await storage.setState(.string(key), forKey: key, in: session.id) }
                for key in odd { try expectEqual(try await storage.stateValue(forKey: key, in: session.id), .string(key), "value under \(key)") }
                try expectEqual(try await storage.session(session.id)?.version, Int64(1 + odd.count), "version after odd keys")
            },
            Check("strings holding U+0000 round-trip exactly in state, metadata, client info, capabilities and events") { context in
                let storage = try await context.storage()
                // NUL, and text that a backend escaping NUL must keep apart from it: noncharacters,
                // the literal text of a JSON escape, escape-like pairs.
                // Swift literals cannot spell noncharacters: U+FDD0 and U+FFFF from their UTF-8.
                let fdd0 = String(decoding: [0xEF, 0xB7, 0x90], as: UTF8.self)
                let ffff = String(decoding: [0xEF, 0xBF, 0xBF], as: UTF8.self)
                let odd: [String] = [
                    "\u{0}", "a\u{0}b\u{0}", fdd0, fdd0 + "0", fdd0 + fdd0, fdd0 + "\u{0}", #"\u0000"#, "\\\u{0}", ffff + "\u{0}",
                ]
                let value: JSONValue = .object(
                    Dictionary(
                        uniqueKeysWithValues: odd.enumerated().map {
                            ("k\($0.offset)\($0.element)", .array([.string($0.element), ["\($0.element)": .string($0.element)]]))
                        }))
                let fields = NewSession(
                    protocolVersion: "2025-11-25", clientInfo: ["name": "nul\u{0}client", "version": value],
                    clientCapabilities: ["x\u{0}": value], serverCapabilities: ["tools": ["n\u{0}": true]],
                    metadata: ["meta\u{0}": value, "plain": .string(fdd0 + "0")], state: ["start": value, "key" + fdd0 + "0": "\u{0}"])
                let session = try await storage.createSession(fields)
                var loaded = try require(try await storage.session(session.id), "session")
                try expectEqual(loaded.clientInfo, fields.clientInfo, "client info")
                try expectEqual(loaded.clientCapabilities, fields.clientCapabilities, "client capabilities")
                try expectEqual(loaded.serverCapabilities, fields.serverCapabilities, "server capabilities")
                try expectEqual(loaded.metadata, fields.metadata, "metadata")
                try expectEqual(loaded.state, fields.state, "state")
                for (index, text) in odd.enumerated() {
                    try await storage.setState(.string(text), forKey: "s\(index)", in: session.id)
                    try await storage.setState(.string(text), forKey: "s\(index)\(text.replacingOccurrences(of: "\u{0}", with: ""))x", in: session.id)
                }
                for (index, text) in odd.enumerated() {
                    try expectEqual(try await storage.stateValue(forKey: "s\(index)", in: session.id), .string(text), "state value \(index)")
                    let key = "s\(index)\(text.replacingOccurrences(of: "\u{0}", with: ""))x"
                    try expectEqual(
                        try await storage.stateValue(forKey: key, in: session.id), .string(text), "state under key \(key.debugDescription)")
                }
                try expectEqual(try await storage.stateValue(forKey: "key" + fdd0 + "0", in: session.id), "\u{0}", "state under an escape-like key")
                try await storage.removeState(forKey: "key" + fdd0 + "0", in: session.id)
                try expectEqual(try await storage.stateValue(forKey: "key" + fdd0 + "0", in: session.id), nil, "removed escape-like key")
                loaded = try require(try await storage.session(session.id), "session")
                loaded.metadata["more\u{0}"] = .string("\u{0}" + fdd0)
                let updated = try await storage.updateSession(loaded)
                try expectEqual(try await storage.session(session.id)?.metadata, updated.metadata, "metadata after update")
                try expectEqual(try await storage.session(session.id)?.state, updated.state, "state after update")
                let event = try await storage.appendEvent(NewEvent(stream: .standalone, data: value), to: session.id)
                try expectEqual(try await storage.event(event.id, in: session.id)?.data, value, "event data")
            },
            Check("a non-finite number is invalidInput and writes nothing") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try await expectError(.invalidInput, "NaN") { try await storage.setState(.double(.nan), forKey: "k", in: session.id) }
                try await expectError(.invalidInput, "infinity event") {
                    try await storage.appendEvent(NewEvent(stream: .standalone, data: .double(.infinity)), to: session.id)
                }
                try expectEqual(try await storage.session(session.id)?.version, 1, "version")
            },
            Check("malformed JSON text is invalidInput") { _ in
                for text in ["{", "{'a': 1}", "[1 2]", "[1,]", "{\"a\":1,}", "nul", "", "\"unterminated", "NaN", "01", "\"\\x\"", "[1]x"] {
                    try await expectError(.invalidInput, "decoding \(text.debugDescription)") { try JSONValue.decode(Data(text.utf8)) }
                }
            },
        ]
    }

    /// Runs every (session, round) pair at once; each outcome with its session and round.
    static func all<T: Sendable>(
        _ sessions: [SessionID], rounds: Int, _ call: @escaping @Sendable (SessionID, Int) async throws(SessionStorageError) -> T
    ) async -> [(SessionID, Int, Result<T, SessionStorageError>)] {
        await withTaskGroup(of: (SessionID, Int, Result<T, SessionStorageError>).self) { group in
            for round in 0..<rounds {
                for id in sessions {
                    group.addTask {
                        do throws(SessionStorageError) {
                            return (id, round, .success(try await call(id, round)))
                        } catch {
                            return (id, round, .failure(error))
                        }
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// The error codes of a session's failed calls.
    static func failures<T>(of id: SessionID, in outcomes: [(SessionID, Int, Result<T, SessionStorageError>)]) -> [SessionStorageError.Code] {
        outcomes.filter { $0.0 == id }.compactMap { if case .failure(let error) = $0.2 { error.code } else { nil } }
    }

    static var concurrencyChecks: [Check] {
        [
            // Backends may run concurrent writes of different sessions as one statement or
            // transaction: each write must still land once, and a refused one fail alone.
            Check("parallel state writes over many sessions: each lands once, a refused one fails alone") { context in
                let storage = try await context.storage(SessionPolicy(maxStateBytesPerSession: 200))
                var sessions: [SessionID] = []
                for _ in 0..<8 { sessions.append(try await storage.createSession().id) }
                let full = try await storage.createSession().id
                try await storage.setState(.string(String(repeating: "x", count: 180)), forKey: "big", in: full)
                let missing = SessionID.generate()
                let outcomes = await all(sessions + [full, missing], rounds: 6) { id, round throws(SessionStorageError) in
                    try await storage.setState(.string(String(repeating: "v", count: 20)), forKey: "k\(round)", in: id)
                }
                for id in sessions {
                    let versions = outcomes.filter { $0.0 == id }.compactMap { try? $0.2.get() }
                    try expectEqual(Set(versions), Set(2...7), "versions of one session's six writes")
                    let loaded = try require(try await storage.session(id), "session")
                    try expectEqual(loaded.state.keys.sorted(), (0..<6).map { "k\($0)" }, "keys")
                    try expectEqual(loaded.version, 7, "version")
                }
                try expectEqual(failures(of: full, in: outcomes), Array(repeating: .limitExceeded, count: 6), "writes to the full session")
                try expectEqual(failures(of: missing, in: outcomes), Array(repeating: .sessionNotFound, count: 6), "writes to a missing session")
                try expectEqual(try await storage.session(full)?.state.keys.sorted(), ["big"], "the full session's keys")
            },
            Check("parallel appends over many sessions: ids rise per session, every field survives, retention holds") { context in
                let storage = try await context.storage(SessionPolicy(maxEventsPerSession: 4))
                var sessions: [SessionID] = []
                for _ in 0..<8 { sessions.append(try await storage.createSession().id) }
                let missing = SessionID.generate()
                // Every third event has no data, every other one a type, every fourth a retry.
                let event: @Sendable (Int) -> NewEvent = { n in
                    NewEvent(
                        stream: .standalone, type: n % 2 == 0 ? "message" : nil, data: n % 3 == 0 ? nil : .int(Int64(n)),
                        retryMilliseconds: n % 4 == 0 ? 500 : nil)
                }
                let outcomes = await all(sessions + [missing], rounds: 6) { id, round throws(SessionStorageError) in
                    try await storage.appendEvent(event(round), to: id)
                }
                for id in sessions {
                    let appended = outcomes.filter { $0.0 == id }.compactMap { outcome in (try? outcome.2.get()).map { (outcome.1, $0) } }
                    let ids = appended.map(\.1.id).sorted()
                    try expect(
                        ids.count == 6 && Set(ids).count == 6 && zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "ids of six appends: \(ids)")
                    let kept = try await storage.recentEvents(in: id, limit: 10)
                    try expectEqual(kept.map(\.id), Array(ids.suffix(4)), "the newest four kept")
                    for stored in kept {
                        let round = try require(appended.first { $0.1.id == stored.id }?.0, "round of event \(stored.id)")
                        let sent = event(round)
                        try expect(
                            stored.type == sent.type && stored.data == sent.data && stored.retryMilliseconds == sent.retryMilliseconds,
                            "event \(stored.id) came back as \(stored)")
                    }
                }
                try expectEqual(failures(of: missing, in: outcomes), Array(repeating: .sessionNotFound, count: 6), "appends to a missing session")
            },
            Check("parallel appends get unique ids, increasing in each writer's order") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let perWriter = try await withThrowingTaskGroup(of: [Int64].self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            var ids: [Int64] = []
                            for index in 0..<25 {
                                let stream = try StreamID.request(.int(Int64(writer)))
                                ids.append(try await storage.appendEvent(NewEvent(stream: stream, data: .int(Int64(index))), to: session.id).id)
                            }
                            return ids
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                for ids in perWriter { try expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "a writer's ids did not increase: \(ids)") }
                let all = perWriter.flatMap { $0 }
                try expectEqual(Set(all).count, 200, "unique ids")
                let stored = try await storage.recentEvents(in: session.id, limit: 1000).map(\.id)
                try expectEqual(stored, all.sorted(), "stored ids")
            },
            Check("parallel writes to different keys lose none") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<40 {
                        group.addTask { try await storage.setState(.int(Int64(index)), forKey: "key-\(index)", in: session.id) }
                    }
                    try await group.waitForAll()
                }
                let loaded = try require(try await storage.session(session.id), "session")
                try expectEqual(loaded.state.count, 40, "keys stored")
                try expect((0..<40).allSatisfy { loaded.state["key-\($0)"] == .int(Int64($0)) }, "a key holds the wrong value")
                try expectEqual(loaded.version, 41, "version after 40 writes")
            },
            Check("parallel optimistic updates lose no increment") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession(NewSession(metadata: ["n": 0]))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<10 {
                        group.addTask {
                            _ = try await storage.modifySession(session.id, attempts: 1000) {
                                (session: inout SessionInfo) throws(SessionStorageError) in
                                guard case .int(let n) = session.metadata["n"] else { throw SessionStorageError(.corrupted, "n is not an int") }
                                session.metadata["n"] = .int(n + 1)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let loaded = try require(try await storage.session(session.id), "session")
                try expectEqual(loaded.metadata["n"], 10, "counter")
                try expectEqual(loaded.version, 11, "version")
            },
            Check("parallel creates and deletes keep counts exact") { context in
                let storage = try await context.storage()
                let ids = try await withThrowingTaskGroup(of: SessionID.self) { group in
                    for _ in 0..<30 { group.addTask { try await storage.createSession().id } }
                    return try await group.reduce(into: [SessionID]()) { $0.append($1) }
                }
                try expectEqual(Set(ids).count, 30, "distinct ids")
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for id in ids.prefix(10) {
                        group.addTask { try await storage.deleteSession(id) }
                        group.addTask { try await storage.deleteSession(id) }
                    }
                    let deleted = try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                    try expectEqual(deleted, 10, "deletes reporting true")
                }
                try expectEqual(try await storage.sessionCount(), 20, "sessions left")
            },
        ]
    }
}
