import Foundation
import MCPSessionStorage

extension SessionStorageConformance {
    static func message(_ n: Int) -> JSONValue {
        ["jsonrpc": "2.0", "method": "notifications/message", "params": ["level": "info", "data": .string("tick \(n)")]]
    }

    /// Appends `count` events alternating over `streams`; returns them as stored.
    static func append(_ count: Int, to id: SessionID, streams: [StreamID], in storage: any SessionStorage) async throws -> [SSEEvent] {
        var stored: [SSEEvent] = []
        for index in 0..<count {
            stored.append(try await storage.appendEvent(NewEvent(stream: streams[index % streams.count], data: message(index)), to: id))
        }
        return stored
    }

    static var eventChecks: [Check] {
        let streamA = try! StreamID.request(7)
        let streamB = try! StreamID.request("req-b")
        return [
            Check("append assigns strictly increasing ids across streams") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(9, to: session.id, streams: [streamA, streamB, .standalone], in: storage)
                let ids = events.map(\.id)
                try expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "ids not strictly increasing: \(ids)")
                try expect(ids[0] > 0, "first id must be positive, got \(ids[0])")
            },
            Check("an event's fields round-trip, including a priming event") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let before = Date()
                let priming = try await storage.appendEvent(NewEvent(stream: streamA, data: nil, retryMilliseconds: 1500), to: session.id)
                let typed = try await storage.appendEvent(NewEvent(stream: streamA, type: "custom", data: message(1)), to: session.id)
                try expectEqual(priming.data, nil, "priming data")
                try expectEqual(priming.retryMilliseconds, 1500, "retry")
                try expectClose(priming.timestamp, before, within: 5, "timestamp")
                let replay = try await storage.recentEvents(in: session.id, limit: 10)
                try expectEqual(replay.count, 2, "stored events")
                try expectEqual(replay[0].data, nil, "stored priming data")
                try expectEqual(replay[0].retryMilliseconds, 1500, "stored retry")
                try expectEqual(replay[0].stream, streamA, "stored stream")
                try expectEqual(replay[1].type, "custom", "stored type")
                try expectEqual(replay[1].data, message(1), "stored data")
                try expectEqual(replay[1].id, typed.id, "stored id")
                try expectClose(replay[1].timestamp, typed.timestamp, "stored timestamp")
            },
            Check("append to a missing session is sessionNotFound") { context in
                let storage = try await context.storage()
                try await expectError(.sessionNotFound, "append") {
                    try await storage.appendEvent(NewEvent(stream: streamA, data: 1), to: .generate())
                }
                try expectEqual(try await storage.eventCount(), 0, "events stored")
            },
            Check("replay after a cursor returns only the cursor's stream, in order") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(10, to: session.id, streams: [streamA, streamB], in: storage)
                let cursor = events[2]  // on stream A
                let replay = try await storage.events(in: session.id, after: cursor.id)
                try expectEqual(replay.map(\.id), events.filter { $0.stream == streamA && $0.id > cursor.id }.map(\.id), "replayed ids")
                try expectEqual(replay.map(\.data), [message(4), message(6), message(8)], "replayed data")
            },
            Check("replay honours its limit") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(6, to: session.id, streams: [streamA], in: storage)
                let replay = try await storage.events(in: session.id, after: events[0].id, limit: 2)
                try expectEqual(replay.map(\.id), [events[1].id, events[2].id], "limited replay")
            },
            Check("replay after the latest event is empty") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(3, to: session.id, streams: [streamA], in: storage)
                try expectEqual(try await storage.events(in: session.id, after: events[2].id), [], "replay after latest")
            },
            Check("a cursor from another session replays nothing") { context in
                let storage = try await context.storage()
                let mine = try await storage.createSession()
                let theirs = try await storage.createSession()
                _ = try await append(2, to: mine.id, streams: [streamA], in: storage)
                let foreign = try await append(6, to: theirs.id, streams: [streamA], in: storage)
                try expectEqual(try await storage.events(in: mine.id, after: foreign[5].id), [], "replay with a foreign cursor")
            },
            Check("an unknown cursor replays nothing") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(3, to: session.id, streams: [streamA], in: storage)
                try expectEqual(try await storage.events(in: session.id, after: events[2].id + 1000), [], "replay after unknown id")
                try expectEqual(try await storage.events(in: session.id, after: -1), [], "replay after negative id")
            },
            Check("replay on a missing session is sessionNotFound") { context in
                let storage = try await context.storage()
                try await expectError(.sessionNotFound, "events(after:)") { try await storage.events(in: .generate(), after: 1) }
                try await expectError(.sessionNotFound, "recentEvents") { try await storage.recentEvents(in: .generate(), limit: 1) }
            },
            Check("a stream's events after any position, stored or not") { context in
                let storage = try await context.storage(SessionPolicy(maxEventsPerSession: 6))
                let session = try await storage.createSession()
                let events = try await append(8, to: session.id, streams: [streamA, streamB], in: storage)  // a b a b…, 2 trimmed
                let onA = events.filter { $0.stream == streamA }
                try expectEqual(
                    try await storage.events(in: session.id, stream: streamA, after: 0, limit: nil).map(\.id), Array(onA.dropFirst().map(\.id)),
                    "stream A from the start (its first event trimmed)")
                try expectEqual(
                    try await storage.events(in: session.id, stream: streamB, after: events[4].id, limit: nil).map(\.id),
                    [events[5].id, events[7].id], "stream B after an event of stream A")
                try expectEqual(
                    try await storage.events(in: session.id, stream: streamA, after: events[2].id, limit: 1).map(\.id), [events[4].id], "limit")
                try expectEqual(try await storage.events(in: session.id, stream: streamA, after: events[7].id, limit: nil), [], "after the newest")
                try expectEqual(
                    try await storage.events(in: session.id, stream: try StreamID(validating: "other"), after: 0, limit: nil), [],
                    "a stream with no events")
                try await expectError(.sessionNotFound, "events(stream:after:)") {
                    try await storage.events(in: .generate(), stream: streamA, after: 0, limit: nil)
                }
            },
            Check("one event by id: its stream and data; nil when trimmed or never stored") { context in
                let storage = try await context.storage(SessionPolicy(maxEventsPerSession: 4))
                let session = try await storage.createSession()
                let other = try await storage.createSession()
                let events = try await append(6, to: session.id, streams: [streamA, streamB], in: storage)
                let newest = try await storage.event(events[5].id, in: session.id)
                try expectEqual(newest?.id, events[5].id, "newest event's id")
                try expectEqual(newest?.data, events[5].data, "newest event's data")
                try expectEqual(try await storage.event(events[4].id, in: session.id)?.stream, streamA, "its stream")
                try expectEqual(try await storage.event(events[0].id, in: session.id), nil, "trimmed event")
                try expectEqual(try await storage.event(events[5].id + 1, in: session.id), nil, "future id")
                try expectEqual(try await storage.event(events[5].id, in: other.id), nil, "another session's id")
                try await expectError(.sessionNotFound, "event(_:in:)") { try await storage.event(1, in: .generate()) }
            },
            Check("recent events are the latest, oldest first") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(8, to: session.id, streams: [streamA, streamB], in: storage)
                try expectEqual(try await storage.recentEvents(in: session.id, limit: 3).map(\.id), events.suffix(3).map(\.id), "recent ids")
                try expectEqual(try await storage.recentEvents(in: session.id, limit: 100).count, 8, "all recent")
                try expectEqual(try await storage.recentEvents(in: session.id, limit: 0), [], "zero limit")
            },
            Check("retention keeps the newest events and ids keep rising") { context in
                let storage = try await context.storage(SessionPolicy(maxEventsPerSession: 5))
                let session = try await storage.createSession()
                let events = try await append(12, to: session.id, streams: [streamA], in: storage)
                let kept = try await storage.recentEvents(in: session.id, limit: 100)
                try expectEqual(kept.map(\.id), events.suffix(5).map(\.id), "kept ids")
                try expectEqual(try await storage.eventCount(), 5, "event count")
                let next = try await storage.appendEvent(NewEvent(stream: streamA, data: 1), to: session.id)
                try expect(next.id > events[11].id, "id after trimming did not rise: \(next.id)")
                try expectEqual(try await storage.events(in: session.id, after: events[3].id), [], "replay from a trimmed cursor")
            },
            Check("retention is per session") { context in
                let storage = try await context.storage(SessionPolicy(maxEventsPerSession: 3))
                let busy = try await storage.createSession()
                let quiet = try await storage.createSession()
                _ = try await append(2, to: quiet.id, streams: [streamA], in: storage)
                _ = try await append(10, to: busy.id, streams: [streamA], in: storage)
                try expectEqual(try await storage.recentEvents(in: quiet.id, limit: 10).count, 2, "quiet session's events")
                try expectEqual(try await storage.recentEvents(in: busy.id, limit: 10).count, 3, "busy session's events")
            },
            Check("deleteEvents removes only the events before the id") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                let events = try await append(6, to: session.id, streams: [streamA], in: storage)
                try expectEqual(try await storage.deleteEvents(in: session.id, before: events[4].id), 4, "deleted count")
                try expectEqual(try await storage.recentEvents(in: session.id, limit: 10).map(\.id), [events[4].id, events[5].id], "left")
                try expectEqual(try await storage.deleteEvents(in: session.id, before: events[4].id), 0, "second delete")
            },
            Check("an oversized event is limitExceeded and stores nothing") { context in
                let storage = try await context.storage(SessionPolicy(maxEventBytes: 100))
                let session = try await storage.createSession()
                try await expectError(.limitExceeded, "big event") {
                    try await storage.appendEvent(NewEvent(stream: streamA, data: .string(String(repeating: "x", count: 200))), to: session.id)
                }
                try expectEqual(try await storage.eventCount(), 0, "events stored")
            },
            Check("an event type with a line break is invalidInput") { context in
                let storage = try await context.storage()
                let session = try await storage.createSession()
                try await expectError(.invalidInput, "event type with newline") {
                    try await storage.appendEvent(NewEvent(stream: streamA, type: "a\ndata: injected", data: 1), to: session.id)
                }
                try await expectError(.invalidInput, "negative retry") {
                    try await storage.appendEvent(NewEvent(stream: streamA, data: nil, retryMilliseconds: -1), to: session.id)
                }
                // Every backend holds what an int4 column holds: more is refused, never clamped.
                try await expectError(.invalidInput, "retry past Int32") {
                    try await storage.appendEvent(NewEvent(stream: streamA, data: nil, retryMilliseconds: Int(Int32.max) + 1), to: session.id)
                }
                try expectEqual(try await storage.eventCount(), 0, "events stored")
            },
        ]
    }
}
