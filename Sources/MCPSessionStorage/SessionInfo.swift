import Foundation

/// Everything stored about one MCP session, apart from its SSE events.
///
/// ``version`` is raised by every write to the session (create is version 1). A copy whose
/// version is lower than the stored one is stale: this is what makes caching safe, and what
/// ``SessionStorage/updateSession(_:)`` checks to refuse lost updates.
public struct SessionInfo: Sendable, Hashable, Codable {
    /// The session's id, as sent in `Mcp-Session-Id`.
    public let id: SessionID
    /// When the session was created.
    public var createdAt: Date
    /// When the session was last used; sessions idle past the TTL expire. Updated by writes and
    /// by ``SessionStorage/touchSession(_:at:)``; a touch does not raise ``version``.
    public var lastActivity: Date
    /// Whether the client completed the `initialize` handshake.
    public var isInitialized: Bool
    /// The negotiated MCP protocol version, such as `2025-06-18`.
    public var protocolVersion: String?
    /// The client's `clientInfo` from `initialize`.
    public var clientInfo: JSONValue?
    /// The client's capabilities from `initialize`.
    public var clientCapabilities: JSONValue?
    /// The capabilities the server announced.
    public var serverCapabilities: JSONValue?
    /// Free-form data for the host (tenant, user, tags…).
    public var metadata: [String: JSONValue]
    /// Per-session state that tools read and write, by key.
    public var state: [String: JSONValue]
    /// Raised by every write; see the type's documentation.
    public var version: Int64

    public init(
        id: SessionID,
        createdAt: Date = Date(),
        lastActivity: Date? = nil,
        isInitialized: Bool = false,
        protocolVersion: String? = nil,
        clientInfo: JSONValue? = nil,
        clientCapabilities: JSONValue? = nil,
        serverCapabilities: JSONValue? = nil,
        metadata: [String: JSONValue] = [:],
        state: [String: JSONValue] = [:],
        version: Int64 = 0
    ) {
        self.id = id
        self.createdAt = createdAt
        self.lastActivity = lastActivity ?? createdAt
        self.isInitialized = isInitialized
        self.protocolVersion = protocolVersion
        self.clientInfo = clientInfo
        self.clientCapabilities = clientCapabilities
        self.serverCapabilities = serverCapabilities
        self.metadata = metadata
        self.state = state
        self.version = version
    }
}

extension SessionInfo {
    /// The state value under `key`, decoded as `T`; `nil` when the key is absent.
    public func state<T: Decodable>(_ key: String, as type: T.Type = T.self) throws(SessionStorageError) -> T? {
        guard let value = state[key] else { return nil }
        return try value.decode(as: T.self)
    }
}

/// The fields of a new session, apart from those the storage assigns (id, timestamps, version).
public struct NewSession: Sendable, Hashable {
    public var isInitialized: Bool
    public var protocolVersion: String?
    public var clientInfo: JSONValue?
    public var clientCapabilities: JSONValue?
    public var serverCapabilities: JSONValue?
    public var metadata: [String: JSONValue]
    public var state: [String: JSONValue]

    public init(
        isInitialized: Bool = false,
        protocolVersion: String? = nil,
        clientInfo: JSONValue? = nil,
        clientCapabilities: JSONValue? = nil,
        serverCapabilities: JSONValue? = nil,
        metadata: [String: JSONValue] = [:],
        state: [String: JSONValue] = [:]
    ) {
        self.isInitialized = isInitialized
        self.protocolVersion = protocolVersion
        self.clientInfo = clientInfo
        self.clientCapabilities = clientCapabilities
        self.serverCapabilities = serverCapabilities
        self.metadata = metadata
        self.state = state
    }
}

extension SessionInfo {
    /// A version-1 session built from `fields`, as every backend's `createSession` stores it.
    public init(id: SessionID, fields: NewSession, at now: Date) {
        self.init(
            id: id, createdAt: now, lastActivity: now, isInitialized: fields.isInitialized,
            protocolVersion: fields.protocolVersion, clientInfo: fields.clientInfo,
            clientCapabilities: fields.clientCapabilities, serverCapabilities: fields.serverCapabilities,
            metadata: fields.metadata, state: fields.state, version: 1)
    }
}
