import MCPSessionStorage

/// The demo tools `mcp-session-server` serves: `state_set`, `state_get` and `ticker`.
///
/// - `state_set` `{key: string, value: any JSON}` stores the value in the session's state and
///   returns text `ok`; a value that `state_get` could not return (its answer would pass the
///   storage's event limit) is refused up front, with the limit in the message.
/// - `state_get` `{key: string}` returns text: the JSON encoding of the stored value, or `null`.
/// - `ticker` `{count: int, interval_ms: int}` sends `count` logging notifications
///   (`notifications/message`, level `info`, data `"tick 0"`, `"tick 1"`, …) on the request's
///   stream, `interval_ms` apart, then returns text `done`.
public enum DemoTools {
    public static var all: [Tool] { [stateSet, stateGet, ticker] }

    struct StateGetInput: Decodable, Sendable {
        var key: String
    }

    struct TickerInput: Decodable, Sendable {
        var count: Int
        var interval_ms: Int
    }

    /// The most ticks one call may ask for, and the longest interval.
    static let maxTicks = 10_000
    static let maxIntervalMilliseconds = 60_000

    public static let stateSet = Tool(
        name: "state_set", description: "Stores a JSON value under a key in this session's state.",
        inputSchema: [
            "type": "object", "required": ["key", "value"],
            "properties": ["key": ["type": "string"], "value": [:]],
        ],
        arguments: { arguments, context in
            // The value is any JSON, taken as parsed: decoding it would copy it several times over.
            guard let keyValue = arguments["key"] else { throw RPCError.invalidParams("invalid arguments for tool state_set: missing key") }
            guard case .string(let key) = keyValue else { throw RPCError.invalidParams("invalid arguments for tool state_set: key must be String") }
            guard let value = arguments["value"] else { throw RPCError.invalidParams("invalid arguments for tool state_set: missing value") }
            try checkReadable(value, forKey: key, policy: context.storage.policy)
            try await context.setState(value, forKey: key)
            return .text("ok")
        })

    /// The longest request id a stream can be named after, as a JSON string: what `state_get`'s
    /// answer carries besides the value.
    static let longestRequestID = JSONValue.string(String(repeating: "x", count: StreamID.maxLength - 2))

    /// Refuses a value that `state_get` could not return: its answer (the value's JSON text,
    /// escaped once more as the text of a content block) is stored as an event, and must fit
    /// the storage's event limit for any request id.
    static func checkReadable(_ value: JSONValue, forKey key: String, policy: SessionPolicy) throws(SessionStorageError) {
        let json = try value.encoded()
        // Escaping at most doubles the text, and the rest of the answer is far below 1 KiB.
        guard 2 * json.count + 1024 > policy.maxEventBytes else { return }
        let answer = OutgoingMessage.result(id: longestRequestID, ToolResult.text(String(decoding: json, as: UTF8.self)).json)
        let size = try answer.encoded().count
        guard size > policy.maxEventBytes else { return }
        throw SessionStorageError(
            .limitExceeded,
            "state value for '\(key)' is \(json.count) bytes, but state_get could not return it: its answer would be \(size) bytes "
                + "and the storage's event limit is \(policy.maxEventBytes) bytes")
    }

    public static let stateGet = Tool(
        name: "state_get", description: "Returns the JSON value stored under a key in this session's state, or null.",
        inputSchema: ["type": "object", "required": ["key"], "properties": ["key": ["type": "string"]]]
    ) { (input: StateGetInput, context) in
        let value = try await context.state(input.key) ?? .null
        return .text(String(decoding: try value.encoded(), as: UTF8.self))
    }

    public static let ticker = Tool(
        name: "ticker", description: "Sends `count` log notifications \"tick N\", `interval_ms` apart, then returns done.",
        inputSchema: [
            "type": "object", "required": ["count", "interval_ms"],
            "properties": [
                "count": ["type": "integer", "minimum": 0, "maximum": .int(Int64(maxTicks))],
                "interval_ms": ["type": "integer", "minimum": 0, "maximum": .int(Int64(maxIntervalMilliseconds))],
            ],
        ]
    ) { (input: TickerInput, context) in
        guard (0...maxTicks).contains(input.count), (0...maxIntervalMilliseconds).contains(input.interval_ms) else {
            throw RPCError.invalidParams("ticker needs 0 ≤ count ≤ \(maxTicks) and 0 ≤ interval_ms ≤ \(maxIntervalMilliseconds)")
        }
        for tick in 0..<input.count {
            if tick > 0 { try await Task.sleep(for: .milliseconds(input.interval_ms)) }
            try await context.log(.info, .string("tick \(tick)"))
        }
        return .text("done")
    }
}
