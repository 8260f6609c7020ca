import Foundation
import Logging
import MCPSessionStorage
import ServiceLifecycle
import Synchronization

/// An MCP server over Streamable HTTP that keeps every session, its state and every message it
/// sends in a ``SessionStorage``, so any instance sharing that storage serves any session.
///
/// ```swift
/// let server = MCPServer(stack: stack)      // or MCPServer(storage: storage, bus: bus)
/// server.register(DemoTools.all)
/// let router = Router()
/// server.addRoutes(to: router)               // POST, GET and DELETE on /mcp
/// let app = Application(router: router)      // binds 127.0.0.1:8080 by default
/// let group = ServiceGroup(services: [app, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
///
/// What travels through storage: `initialize` creates the session (protocol version, client
/// info and capabilities, server capabilities); every response and notification is appended as
/// an event of its request's stream and only then written to the wire, from storage. A stream
/// that breaks is resumed with `Last-Event-ID` on any instance: it replays what was stored and
/// then follows what the running tool still appends, woken by the change bus's event-appended
/// messages (or, without a bus, by polling every ``Configuration/pollInterval``).
///
/// Run the server as a `Service`: it listens to the bus, and at graceful shutdown it closes
/// open streams and stops running tools.
public final class MCPServer: Service, Sendable {
    /// Server settings, with defaults fit for production.
    public struct Configuration: Sendable {
        /// The endpoint path. Default `/mcp`.
        public var path = "/mcp"
        /// `serverInfo.name` in the `initialize` result. Default `mcp-session-server`.
        public var name = "mcp-session-server"
        /// `serverInfo.version`. Default `0.1.0`.
        public var version = "0.1.0"
        /// `instructions` in the `initialize` result. Default none.
        public var instructions: String?
        /// Origins accepted besides `http(s)://localhost`, `127.0.0.1` and `[::1]` on any port,
        /// e.g. `https://app.example.com`. Requests without `Origin` (non-browser clients) are accepted.
        public var allowedOrigins: Set<String> = []
        /// The largest request body accepted; larger ones get 413. Default 4 MiB.
        public var maxBodyBytes = 4 << 20
        /// The SSE `retry` sent with each stream's priming event (the first event of every
        /// stream, an id to resume from with empty data): how long a client waits before
        /// reconnecting. Default 1 second.
        public var retryInterval: Duration = .seconds(1)
        /// How often an open stream rereads storage without being woken: the delivery bound
        /// when a wake-up is lost, or when instances share storage without a bus. Default 2 seconds.
        public var pollInterval: Duration = .seconds(2)
        /// An idle stream sends an SSE comment this often, so dead connections are found. Default 15 seconds.
        public var keepAliveInterval: Duration = .seconds(15)
        /// The suggested wait sent in `Retry-After` while storage is unavailable. Default 1 second.
        public var retryAfterSeconds = 1
        /// How long a call's lease may go unrenewed before another instance following its
        /// stream ends it with ``RPCError/instanceStopped``: the time a client that resumed on
        /// another instance waits, at worst, after the call's instance died. A call takes its
        /// lease after a fifth of this and renews it every fifth. Default 5 seconds.
        public var callLeaseTimeout: Duration = .seconds(5)
        /// How long shutdown waits for the running calls to store their answers. Default 5 seconds.
        public var shutdownGracePeriod: Duration = .seconds(5)
        /// The liveness endpoint (`GET`: 200 while the process serves HTTP); nil for none.
        /// Default `/health`.
        public var healthPath: String? = "/health"
        /// The readiness endpoint (`GET`: 200 when storage answers and the bus, if any, is
        /// connected; 503 with the reason otherwise); nil for none. Default `/ready`.
        public var readyPath: String? = "/ready"

        public init() {}
    }

    /// The protocol versions served, oldest first; the last one is offered to clients that ask
    /// for one this server does not know.
    public static let supportedProtocolVersions = ["2025-03-26", "2025-06-18", "2025-11-25"]

    public let storage: any SessionStorage
    public let configuration: Configuration
    let bus: (any ChangeBus)?
    let logger: Logger
    let hub = StreamHub()
    /// The tools by name, and their names in registration order (the order `tools/list` shows).
    private let tools = Mutex<(byName: [String: Tool], order: [String])>(([:], []))
    let calls: RunningCalls
    /// Whether the bus is connected (true without a bus), for ``Configuration/readyPath``.
    let busConnected: Atomic<Bool>
    /// This instance's id: its bus's, or a new one.
    let instanceID: String

    /// - Parameters:
    ///   - storage: Where sessions, state and events live; share it (and `bus`) among instances.
    ///     Its policy says how long an idle session lives.
    ///   - bus: Tells this instance about events other instances append, so a resumed stream
    ///     follows a tool running elsewhere at once: the same bus the tiered storage listens to.
    ///     Without one, streams poll.
    public init(
        storage: any SessionStorage, bus: (any ChangeBus)? = nil, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "mcp.server")
    ) {
        self.storage = storage
        self.bus = bus
        self.configuration = configuration
        self.logger = logger
        self.instanceID = bus?.instanceID ?? UUID().uuidString
        self.busConnected = Atomic(bus == nil)
        self.calls = RunningCalls(storage: storage, instanceID: instanceID, lease: CallLease(timeout: configuration.callLeaseTimeout), logger: logger)
    }

    /// A server over a ``SessionStack``'s storage and bus.
    public convenience init(stack: SessionStack, configuration: Configuration = Configuration(), logger: Logger = Logger(label: "mcp.server")) {
        self.init(storage: stack.storage, bus: stack.bus, configuration: configuration, logger: logger)
    }

    /// Adds tools (a tool with the name of an earlier one replaces it). Register before serving.
    public func register(_ newTools: [Tool]) {
        tools.withLock { tools in
            for tool in newTools {
                if tools.byName[tool.name] == nil { tools.order.append(tool.name) }
                tools.byName[tool.name] = tool
            }
        }
    }

    /// Adds one tool.
    public func register(_ tool: Tool) { register([tool]) }

    var listedTools: [Tool] {
        tools.withLock { tools in tools.order.compactMap { tools.byName[$0] } }
    }

    func tool(named name: String) -> Tool? { tools.withLock { $0.byName[name] } }

    /// Listens to the bus until graceful shutdown, then closes every open stream and stops the
    /// tools still running.
    public func run() async throws {
        // On the bus's thread, as each message is read: waking a stream is a flag and a resume.
        let subscription = bus.map { bus in
            bus.subscribe { [hub, self] signal in
                switch signal {
                case .message(let message) where message.origin != bus.instanceID:
                    switch message.change {
                    case .eventAppended(let id, _, _): hub.wake(id)
                    case .deleted(let id): hub.close(id)
                    case .changed, .mayHaveChanged, .eventsDeleted: break
                    }
                case .connected:
                    // Messages sent while disconnected are lost: every stream rereads.
                    self.busConnected.store(true, ordering: .relaxed)
                    hub.wakeAll()
                case .disconnected:
                    self.busConnected.store(false, ordering: .relaxed)
                case .message: break
                }
            }
        }
        await cancelWhenGracefulShutdown { await self.keepSessionsInUseAlive() }
        subscription?.cancel()
        logger.info("shutting down: answering running calls, closing open streams", metadata: ["calls": "\(calls.count)", "streams": "\(hub.count)"])
        await calls.stopAll(within: configuration.shutdownGracePeriod)
        hub.closeAll()
    }

    /// Sends a server-initiated notification (e.g. `notifications/resources/list_changed`) on
    /// the session's standalone stream, the one a client opens with `GET`. It is stored first,
    /// so a client that is not listening now gets it when it resumes, from any instance.
    public func sendNotification(_ method: String, params: JSONValue = [:], to session: SessionID) async throws(SessionStorageError) {
        try await append(OutgoingMessage.notification(method, params), to: .standalone, in: session)
    }

    // MARK: Storage, as the HTTP layer uses it

    /// Appends a message to a stream, and wakes its readers.
    @discardableResult
    func append(_ message: JSONValue, to stream: StreamID, in session: SessionID) async throws(SessionStorageError) -> SSEEvent {
        let event = try await storage.appendEvent(NewEvent(stream: stream, data: message), to: session)
        hub.wake(session)
        return event
    }

    /// The live session for a request's `Mcp-Session-Id`, touched; `nil` if unknown or expired.
    func liveSession(_ id: SessionID) async throws(SessionStorageError) -> SessionInfo? {
        guard let session = try await storage.currentSession(id) else { return nil }
        let now = Date()
        if storage.policy.isExpired(lastActivity: session.lastActivity, at: now) { return nil }
        try await storage.touchSession(id, at: now)
        return session
    }

    // MARK: Answering requests

    /// Answers one request of an initialized session. Never throws: failures become JSON-RPC errors.
    func answer(_ method: String, id: JSONValue, params: JSONValue?, session: SessionInfo, send: @escaping MessageSender) async -> JSONValue {
        do {
            return OutgoingMessage.result(id: id, try await perform(method, params: params, session: session, send: send))
        } catch let error as RPCError {
            return OutgoingMessage.error(id: id, error)
        } catch let error as SessionStorageError {
            return OutgoingMessage.error(id: id, Self.rpcError(error))
        } catch is CancellationError {
            // Cancelled by the client or by shutdown: the stream still ends with an answer.
            return OutgoingMessage.error(id: id, RPCError(code: -32800, message: "request cancelled"))
        } catch {
            logger.error("request failed", metadata: ["method": "\(method)", "error": "\(error)"])
            return OutgoingMessage.error(id: id, .internalError("internal error"))
        }
    }

    static func rpcError(_ error: SessionStorageError) -> RPCError {
        switch error.code {
        case .unavailable: .unavailable("session storage unavailable: \(error.message)")
        case .invalidInput, .limitExceeded: .invalidParams(error.message)
        case .sessionNotFound: .invalidRequest("session not found")
        default: .internalError(error.message)
        }
    }

    private func perform(_ method: String, params: JSONValue?, session: SessionInfo, send: @escaping MessageSender) async throws -> JSONValue {
        switch method {
        case "ping":
            return [:]
        case "tools/list":
            return ["tools": .array(listedTools.map(\.listing))]
        case "tools/call":
            return try await callTool(params: params, session: session, send: send)
        case "logging/setLevel":
            guard let text = params?[member: "level"]?.stringValue, LogLevel(rawValue: text) != nil else {
                throw RPCError.invalidParams("level must be one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            _ = try await storage.modifySession(session.id) { $0.metadata[Self.logLevelKey] = .string(text) }
            return [:]
        case "initialize":
            throw RPCError.invalidRequest("this session is already initialized")
        default:
            throw RPCError.methodNotFound(method)
        }
    }

    static let logLevelKey = "mcp.logLevel"

    private func callTool(params: JSONValue?, session: SessionInfo, send: @escaping MessageSender) async throws -> JSONValue {
        guard let name = params?[member: "name"]?.stringValue else { throw RPCError.invalidParams("tools/call needs a \"name\"") }
        guard let tool = tool(named: name) else { throw RPCError.invalidParams("unknown tool: \(name)") }
        let arguments = params?[member: "arguments"] ?? [:]
        guard case .object = arguments else { throw RPCError.invalidParams("\"arguments\" must be an object") }
        let level = session.metadata[Self.logLevelKey]?.stringValue.flatMap(LogLevel.init(rawValue:)) ?? .debug
        let context = ToolContext(
            sessionID: session.id, storage: storage, progressToken: params?[member: "_meta"]?[member: "progressToken"],
            minimumLogLevel: level, send: send)
        do {
            return try await tool.call(arguments, context).json
        } catch let error as RPCError {
            throw error
        } catch let error as SessionStorageError where error.code == .unavailable {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as SessionStorageError {
            return ToolResult.error(error.message).json
        } catch {
            return ToolResult.error("\(error)").json
        }
    }

    /// Builds a new session's `initialize` result, and stores the session.
    func initialize(params: JSONValue?) async throws -> (SessionInfo, JSONValue) {
        guard case .object(let object)? = params else { throw RPCError.invalidParams("initialize needs params") }
        guard let requested = object["protocolVersion"]?.stringValue else { throw RPCError.invalidParams("initialize needs \"protocolVersion\"") }
        let clientCapabilities = object["capabilities"] ?? [:]
        guard case .object = clientCapabilities else { throw RPCError.invalidParams("\"capabilities\" must be an object") }
        let version = Self.supportedProtocolVersions.contains(requested) ? requested : Self.supportedProtocolVersions.last!
        let capabilities: JSONValue = ["tools": ["listChanged": false], "logging": [:]]
        let session = try await storage.createSession(
            NewSession(
                isInitialized: false, protocolVersion: version, clientInfo: object["clientInfo"],
                clientCapabilities: clientCapabilities, serverCapabilities: capabilities,
                metadata: ["mcp.initializeParams": .object(object)]))
        var result: [String: JSONValue] = [
            "protocolVersion": .string(version), "capabilities": capabilities,
            "serverInfo": ["name": .string(configuration.name), "version": .string(configuration.version)],
        ]
        if let instructions = configuration.instructions { result["instructions"] = .string(instructions) }
        logger.debug("session created", metadata: ["session": "\(session.id)", "protocol": "\(version)"])
        return (session, .object(result))
    }

    /// Handles a notification from the client.
    func notify(_ method: String, params: JSONValue?, session: SessionInfo) async throws(SessionStorageError) {
        switch method {
        case "notifications/initialized":
            if !session.isInitialized {
                _ = try await storage.modifySession(session.id) { $0.isInitialized = true }
            }
        case "notifications/cancelled":
            if let requestID = params?[member: "requestId"], let stream = try? StreamID.request(requestID) {
                calls.cancel(session: session.id, stream: stream)
            }
        default:
            break
        }
    }
}

/// Stores a message of a request's stream (and, for an SSE answer, hands it to the writer).
typealias MessageSender = @Sendable (JSONValue) async throws(SessionStorageError) -> Void
