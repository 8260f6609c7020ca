import MCPSessionStorage

/// A JSON-RPC 2.0 error, as sent in a response's `error` member.
public struct RPCError: Error, Sendable, Hashable {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static func parseError(_ message: String) -> RPCError { RPCError(code: -32700, message: message) }
    public static func invalidRequest(_ message: String) -> RPCError { RPCError(code: -32600, message: message) }
    public static func methodNotFound(_ method: String) -> RPCError { RPCError(code: -32601, message: "method not found: \(method)") }
    public static func invalidParams(_ message: String) -> RPCError { RPCError(code: -32602, message: message) }
    public static func internalError(_ message: String) -> RPCError { RPCError(code: -32603, message: message) }
    /// The session store cannot be reached; the client may retry.
    public static func unavailable(_ message: String) -> RPCError { RPCError(code: -32000, message: message) }
    /// The instance running the request stopped (it was shut down, or it died and another
    /// instance found its call's lease lapsed) before the request finished; it may be retried.
    public static let instanceStopped = RPCError(
        code: -32001, message: "the instance running this request stopped before it finished; the request may be retried")

    var json: JSONValue {
        var object: [String: JSONValue] = ["code": .int(Int64(code)), "message": .string(message)]
        if let data { object["data"] = data }
        return .object(object)
    }
}

/// One JSON-RPC message from a client.
enum IncomingMessage: Sendable {
    case request(id: JSONValue, method: String, params: JSONValue?)
    case notification(method: String, params: JSONValue?)
    /// A response to a request of ours; this server sends none, so these are accepted and dropped.
    case response

    /// Reads one message, checking the JSON-RPC 2.0 envelope.
    init(_ value: JSONValue) throws(RPCError) {
        guard case .object(let object) = value else {
            if case .array = value {
                throw .invalidRequest("JSON-RPC batches are not supported: send one message per request")
            }
            throw .invalidRequest("a JSON-RPC message must be an object")
        }
        guard object["jsonrpc"] == .string("2.0") else { throw .invalidRequest("\"jsonrpc\" must be \"2.0\"") }
        let params = object["params"]
        if let params {
            switch params {
            case .object, .array: break
            default: throw .invalidRequest("\"params\" must be an object or an array")
            }
        }
        guard let methodValue = object["method"] else {
            guard object["result"] != nil || object["error"] != nil, object["id"] != nil else {
                throw .invalidRequest("a message needs \"method\", or \"id\" with \"result\" or \"error\"")
            }
            self = .response
            return
        }
        guard case .string(let method) = methodValue, !method.isEmpty else { throw .invalidRequest("\"method\" must be a non-empty string") }
        guard let id = object["id"] else {
            self = .notification(method: method, params: params)
            return
        }
        switch id {
        case .string, .int: self = .request(id: id, method: method, params: params)
        default: throw .invalidRequest("\"id\" must be a string or an integer")
        }
    }

    /// The request's id, to answer an error with.
    static func id(in value: JSONValue) -> JSONValue {
        guard case .object(let object) = value, let id = object["id"] else { return .null }
        switch id {
        case .string, .int: return id
        default: return .null
        }
    }
}

/// Builders for what the server sends.
enum OutgoingMessage {
    static func result(id: JSONValue, _ result: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "result": result]
    }

    static func error(id: JSONValue, _ error: RPCError) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "error": error.json]
    }

    static func notification(_ method: String, _ params: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "method": .string(method), "params": params]
    }

    /// Whether a stored message is a response, i.e. the last message of its request's stream.
    static func isResponse(_ message: JSONValue?) -> Bool {
        guard case .object(let object)? = message, object["method"] == nil else { return false }
        return object["result"] != nil || object["error"] != nil
    }
}
