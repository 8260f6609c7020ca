import Foundation
import MCPSessionStorage

extension SessionStorageConformance {
    static let sampleFields = NewSession(
        isInitialized: true,
        protocolVersion: "2025-06-18",
        clientInfo: ["name": "inspector", "version": "1.2.3"],
        clientCapabilities: ["roots": ["listChanged": true], "sampling": [:]],
        serverCapabilities: ["tools": ["listChanged": false]],
        metadata: ["tenant": "acme", "weight": 2.5],
        state: ["counter": 1, "profile": ["name": "Zoë", "tags": ["a", "b"]]]
    )

    static var sessionChecks: [Check] {
        [
            Check("create assigns a UUID v7 id at version 1") { context in
                let storage = try await context.storage()
                let before = Date()
                let session = try await storage.createSession()
                let text = session.id.rawValue
                try expect(
                    text.range(of: "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression) != nil,
                    "id \(text) is not a UUID v7")
                try expectEqual(session.version, 1, "version of a new session")
                try expectClose(session.createdAt, before, within: 5, "createdAt")
                try expectEqual(session.lastActivity, session.createdAt, "lastActivity of a new session")
                let other = try await storage.createSession()
                try expect(other.id != session.id, "two sessions got the same id")
            },
            Check("create with a given id stores under that id") { context in
                let storage = try await context.storage()
                let id = try SessionID(validating: "given-id-1")
                let session = try await storage.createSession(id: id, NewSession())
                try expectEqual(session.id, id, "id")
                try expectEqual(try await storage.session(id)?.id, id, "stored id")
            },
            Check("create with a taken id is a versionConflict and keeps the original") { context in
                let storage = try await context.storage()
                let original = try await storage.createSession(sampleFields)
                try await expectError(.versionConflict, "second create") {
                    try await storage.createSession(id: original.id, NewSession())
                }
                try expectEqual(try await storage.session(original.id)?.state, sampleFields.state, "state of the original")
            },
            Check("every field of a session round-trips") { context in
                let storage = try await context.storage()
                let created = try await storage.createSession(sampleFields)
                let loaded = try require(try await storage.session(created.id), "loaded session")
                try expectEqual(loaded.isInitialized, true, "isInitialized")
                try expectEqual(loaded.protocolVersion, "2025-06-18", "protocolVersion")
                try expectEqual(loaded.clientInfo, sampleFields.clientInfo, "clientInfo")
                try expectEqual(loaded.clientCapabilities, sampleFields.clientCapabilities, "clientCapabilities")
                try expectEqual(loaded.serverCapabilities, sampleFields.serverCapabilities, "serverCapabilities")
                try expectEqual(loaded.metadata, sampleFields.metadata, "metadata")
                try expectEqual(loaded.state, sampleFields.state, "state")
                try expectEqual(loaded.version, 1, "version")
                try expectClose(loaded.createdAt, created.createdAt, "createdAt")
            },
            Check("a missing session reads as nil") { context in
                let storage = try await context.storage()
                try expect(try await storage.session(.generate()) == nil, "missing session was not nil")
            },
            Check("update stores the fields and raises the version by one") { context in
                let storage = try await context.storage()
                var session = try await storage.createSession()
                session.isInitialized = true
                session.protocolVersion = "2025-11-25"
                session.metadata["user"] = "u-1"
                session.state = ["only": "this"]
                let updated = try await storage.updateSession(session)
                try expectEqual(updated.version, 2, "returned version")
                let loaded = try require(try await storage.session(session.id), "loaded")
                try expectEqual(loaded.version, 2, "stored version")
                try expectEqual(loaded.protocolVersion, "2025-11-25", "protocolVersion")
                try expectEqual(loaded.metadata, ["user": "u-1"], "metadata")
                try expectEqual(loaded.state, ["only": "this"], "state replaced whole")
                try expect(loaded.isInitialized, "isInitialized")
            },
            Check("update from a stale copy is a versionConflict and changes nothing") { context in
                let storage = try await context.storage()
                let stale = try await storage.createSession()
                try await storage.setState("fresh", forKey: "k", in: stale.id)
                var edited = stale
                edited.metadata["lost"] = true
                try await expectError(.versionConflict, "stale update") { try await storage.updateSession(edited) }
                let loaded = try require(try await storage.session(stale.id), "loaded")
                try expectEqual(loaded.metadata, [:], "metadata after refused update")
                try expectEqual(loaded.state, ["k": "fresh"], "state after refused update")
                try expectEqual(loaded.version, 2, "version after refused update")
            },
            Check("update of a missing session is sessionNotFound") { context in
                let storage = try await context.storage()
                try await expectError(.sessionNotFound, "update") {
                    try await storage.updateSession(SessionInfo(id: .generate(), version: 1))
                }
            },
            Check("modifySession retries over a concurrent change") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let result = try await storage.modifySession(session.id) { $0.metadata["n"] = 1 }
                try expectEqual(result.metadata["n"], 1, "modified metadata")
                try expectEqual(result.version, 2, "version")
            },
            Check("delete removes the session and reports whether it existed") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession(sampleFields)
                _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: "x"), to: session.id)
                try expect(try await storage.deleteSession(session.id), "first delete returned false")
                try expect(try await storage.session(session.id) == nil, "session still readable")
                try expect(!(try await storage.deleteSession(session.id)), "second delete returned true")
                try expectEqual(try await storage.eventCount(), 0, "events left after delete")
                try await expectError(.sessionNotFound, "state of a deleted session") {
                    try await storage.stateValue(forKey: "counter", in: session.id)
                }
            },
            Check("a session re-created under a deleted id starts fresh") { context in
                let storage = try await context.storage()
                let first = try await storage.createSession(sampleFields)
                _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: "old"), to: first.id)
                _ = try await storage.deleteSession(first.id)
                let again = try await storage.createSession(id: first.id, NewSession())
                try expectEqual(again.version, 1, "version")
                try expectEqual(try await storage.session(first.id)?.state, [:], "state")
                try expectEqual(try await storage.recentEvents(in: first.id, limit: 10), [], "events")
            },
            Check("list and count see every session and event") { context in
                let storage = try await context.storage()
                var ids: Set<SessionID> = []
                for index in 0..<5 {
                    let session = try await storage.createSession()
                    ids.insert(session.id)
                    for _ in 0..<index { _ = try await storage.appendEvent(NewEvent(stream: .standalone, data: 1), to: session.id) }
                }
                try expectEqual(Set(try await storage.allSessionIDs()), ids, "listed ids")
                try expectEqual(try await storage.sessionCount(), 5, "session count")
                try expectEqual(try await storage.eventCount(), 10, "event count")
            },
            Check("the version alone reads as the session's, and nil for a missing one") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try expectEqual(try await storage.sessionVersion(session.id), 1, "after create")
                let version = try await storage.setState(1, forKey: "k", in: session.id)
                try expectEqual(try await storage.sessionVersion(session.id), version, "after a write")
                try expectEqual(try await storage.currentSession(session.id)?.version, version, "the current session")
                try expectEqual(try await storage.sessionVersion(.generate()), nil, "a missing session")
                try expectEqual(try await storage.currentSession(.generate()), nil, "a missing session, current")
            },
            Check("listing pages through every session once, in a stable order") { context in
                let storage = try await context.storage()
                var ids: Set<SessionID> = []
                for _ in 0..<7 { ids.insert(try await storage.createSession().id) }
                var listed: [SessionID] = []
                var pages: [Int] = []
                var cursor: SessionID?
                while pages.count < 10 {
                    let page = try await storage.listSessions(after: cursor, limit: 3)
                    pages.append(page.count)
                    listed += page
                    guard page.count == 3, let last = page.last else { break }
                    cursor = last
                }
                try expectEqual(pages, [3, 3, 1], "page sizes")
                try expectEqual(Set(listed), ids, "listed ids")
                try expectEqual(listed.count, ids.count, "ids listed once each")
                try expectEqual(try await storage.listSessions(after: nil, limit: 7), listed, "one page of all, in the same order")
                // A cursor whose session is gone still pages on.
                try await storage.deleteSession(listed[2])
                try expectEqual(try await storage.listSessions(after: listed[2], limit: 10), Array(listed[3...]), "after a deleted cursor")
                try expectEqual(try await storage.listSessions(after: listed[6], limit: 3), [], "after the last")
            },
            Check("touch moves lastActivity without raising the version") { context in
                let storage = try await context.storage(SessionPolicy(activityWriteInterval: .zero))
                let session = try await storage.createSession()
                let later = session.lastActivity.addingTimeInterval(60)
                try await storage.touchSession(session.id, at: later)
                let loaded = try require(try await storage.session(session.id), "loaded")
                try expectClose(loaded.lastActivity, later, "lastActivity")
                try expectEqual(loaded.version, 1, "version after touch")
            },
            Check("touch within the activity interval writes nothing") { context in
                let storage = try await context.storage(SessionPolicy(activityWriteInterval: .seconds(30)))
                let session = try await storage.createSession()
                try await storage.touchSession(session.id, at: session.lastActivity.addingTimeInterval(10))
                try expectClose(
                    try require(try await storage.session(session.id), "loaded").lastActivity, session.lastActivity, "lastActivity after early touch")
                let later = session.lastActivity.addingTimeInterval(31)
                try await storage.touchSession(session.id, at: later)
                try expectClose(try require(try await storage.session(session.id), "loaded").lastActivity, later, "lastActivity after late touch")
            },
            Check("touch of a missing session is sessionNotFound") { context in
                let storage = try await context.storage()
                try await expectError(.sessionNotFound, "touch") { try await storage.touchSession(.generate()) }
            },
            Check("maintenance runs on a used storage") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession(sampleFields)
                try await storage.maintenance()
                try expectEqual(try await storage.session(session.id)?.state, sampleFields.state, "state after maintenance")
            },
        ]
    }
}
