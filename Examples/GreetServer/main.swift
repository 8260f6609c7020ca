import Foundation
import Hummingbird
import Logging
import MCPSessionServer
import MCPSessionStorage
import MCPSessionStorageSQLite
import ServiceLifecycle

struct Greet: Decodable, Sendable { var name: String }

let logger = Logger(label: "greet-server")
let storage = try SQLiteSessionStorage(configuration: .init(path: "greet.db"))
let stack = SessionStack(durable: storage)  // an in-process front, and the cleanup service
let server = MCPServer(stack: stack, logger: logger)
server.register(
    Tool(name: "greet", description: "Greets someone.", inputSchema: ["type": "object", "properties": ["name": ["type": "string"]]]) {
        (input: Greet, context) in
        let count = try await context.state("greetings")?.intValue ?? 0
        try await context.setState(.int(count + 1), forKey: "greetings")  // per-session state
        try await context.log(.info, .string("greeting \(input.name)"))  // a notification on the call's stream
        return .text("Hello, \(input.name)!")
    })

let router = Router()
server.addRoutes(to: router)
let port = Int(ProcessInfo.processInfo.environment["PORT"] ?? "") ?? 8080
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
let group = ServiceGroup(
    services: stack.services + [app, server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
try await group.run()
