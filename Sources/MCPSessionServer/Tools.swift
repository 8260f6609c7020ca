import Foundation
import MCPSessionStorage

/// What a tool returns: MCP content blocks, and whether the call failed.
public struct ToolResult: Sendable, Hashable {
    /// Content blocks, e.g. `{"type": "text", "text": "ok"}`.
    public var content: [JSONValue]
    /// A failure the model should see (not a protocol error).
    public var isError: Bool

    public init(content: [JSONValue], isError: Bool = false) {
        self.content = content
        self.isError = isError
    }

    /// One text block.
    public static func text(_ text: String) -> ToolResult {
        ToolResult(content: [["type": "text", "text": .string(text)]])
    }

    /// One text block, marked as an error.
    public static func error(_ text: String) -> ToolResult {
        ToolResult(content: [["type": "text", "text": .string(text)]], isError: true)
    }

    var json: JSONValue { ["content": .array(content), "isError": .bool(isError)] }
}

/// The severity of a log notification (RFC 5424 names, as MCP uses them).
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case debug, info, notice, warning, error, critical, alert, emergency

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// What a tool handler gets besides its arguments: the session it runs in, its state, and a
/// way to send notifications on the request's stream.
///
/// Every notification is stored as an event of the request's stream before it is sent, so a
/// client that drops the stream gets it on resumption, from this instance or another one.
public struct ToolContext: Sendable {
    /// The session the call belongs to.
    public let sessionID: SessionID
    /// The storage the server keeps sessions in.
    public let storage: any SessionStorage
    /// The client's `_meta.progressToken`, if it asked for progress.
    public let progressToken: JSONValue?
    /// The lowest level the client asked for with `logging/setLevel` (default: everything).
    public let minimumLogLevel: LogLevel
    let send: MessageSender

    /// The session's state value for `key`, or `nil`.
    public func state(_ key: String) async throws(SessionStorageError) -> JSONValue? {
        try await storage.stateValue(forKey: key, in: sessionID)
    }

    /// Stores `value` under `key` in the session's state.
    public func setState(_ value: JSONValue, forKey key: String) async throws(SessionStorageError) {
        _ = try await storage.setState(value, forKey: key, in: sessionID)
    }

    /// Sends a `notifications/message` log notification on the request's stream.
    public func log(_ level: LogLevel, _ data: JSONValue, logger: String? = nil) async throws(SessionStorageError) {
        guard level >= minimumLogLevel else { return }
        var params: [String: JSONValue] = ["level": .string(level.rawValue), "data": data]
        if let logger { params["logger"] = .string(logger) }
        try await send(OutgoingMessage.notification("notifications/message", .object(params)))
    }

    /// Sends a `notifications/progress` notification, if the client asked for progress.
    public func progress(_ progress: Double, total: Double? = nil, message: String? = nil) async throws(SessionStorageError) {
        guard let progressToken else { return }
        var params: [String: JSONValue] = ["progressToken": progressToken, "progress": .double(progress)]
        if let total { params["total"] = .double(total) }
        if let message { params["message"] = .string(message) }
        try await send(OutgoingMessage.notification("notifications/progress", .object(params)))
    }
}

/// A tool as listed by `tools/list` and run by `tools/call`.
public struct Tool: Sendable {
    public var name: String
    public var description: String
    /// The JSON Schema of the arguments object.
    public var inputSchema: JSONValue
    let call: @Sendable (JSONValue, ToolContext) async throws -> ToolResult

    /// A tool whose arguments decode into `Input`; arguments that do not decode are answered
    /// with JSON-RPC "invalid params" before the handler runs.
    public init<Input: Decodable & Sendable>(
        name: String, description: String, inputSchema: JSONValue, input: Input.Type = Input.self,
        handler: @escaping @Sendable (Input, ToolContext) async throws -> ToolResult
    ) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.call = { arguments, context in
            let input: Input
            do {
                input = try arguments.decode(as: Input.self)
            } catch {
                throw RPCError.invalidParams("invalid arguments for tool \(name): \(Self.explain((error as? SessionStorageError)?.underlying))")
            }
            return try await handler(input, context)
        }
    }

    /// A tool that reads its arguments object as it is, without decoding: for arguments that
    /// hold arbitrary JSON, which a `Decodable` round trip would copy several times over (a
    /// 4 MiB array of numbers took about 200 MB on its way through `JSONDecoder`).
    init(
        name: String, description: String, inputSchema: JSONValue,
        arguments handler: @escaping @Sendable (_ arguments: [String: JSONValue], ToolContext) async throws -> ToolResult
    ) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.call = { arguments, context in
            guard case .object(let members) = arguments else {
                throw RPCError.invalidParams("invalid arguments for tool \(name): they must be an object")
            }
            return try await handler(members, context)
        }
    }

    /// A decoding error in a sentence a client can act on.
    static func explain(_ error: (any Error)?) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "arguments" : codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?: return "missing \(path(context.codingPath + [key]))"
        case .typeMismatch(let type, let context)?: return "\(path(context.codingPath)) must be \(type)"
        case .valueNotFound(let type, let context)?: return "\(path(context.codingPath)) must be \(type), not null"
        case .dataCorrupted(let context)?: return "\(path(context.codingPath)): \(context.debugDescription)"
        default: return "they do not match the input schema"
        }
    }

    var listing: JSONValue {
        ["name": .string(name), "description": .string(description), "inputSchema": inputSchema]
    }
}
