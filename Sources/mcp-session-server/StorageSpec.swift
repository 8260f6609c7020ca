import ArgumentParser
import MCPSessionStorageDynamoDB

/// What `--storage` names.
enum StorageSpec: Equatable {
    case memory
    case sqlite(path: String)
    case postgres(url: String)
    case redis(url: String)
    case dynamodb(url: String)

    static let expected =
        "memory:, sqlite:PATH, postgres://USER[:PASS]@HOST[:PORT]/DB, redis://[:PASS@]HOST[:PORT][/DB] (redis+cluster://, or several HOST:PORT, for a cluster) or dynamodb://TABLE?region=REGION[&endpoint=URL]"

    /// Parses `memory:`, `sqlite:PATH`, `postgres://USER[:PASS]@HOST[:PORT]/DB` or
    /// `redis://[:PASS@]HOST[:PORT][/DB]` (`redis+cluster://…`, or several comma-separated hosts) or
    /// `dynamodb://TABLE?region=REGION[&endpoint=URL][&create=false]`.
    init(parsing text: String) throws(ValidationError) {
        if text == "memory:" {
            self = .memory
        } else if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw ValidationError("--storage sqlite: needs a file path, e.g. sqlite:mcp_sessions.db") }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else if text.hasPrefix("redis://") || text.hasPrefix("redis+cluster://") {
            self = .redis(url: text)
        } else if text.hasPrefix("dynamodb://") {
            do { _ = try DynamoDBSessionStorage.Configuration(url: text) } catch { throw ValidationError("--storage: \(error.message)") }
            self = .dynamodb(url: text)
        } else if let scheme = ["rediss"].first(where: { text.hasPrefix("\($0):") }) {
            throw ValidationError("--storage \(scheme): this build has no \(scheme) backend; use \(Self.expected)")
        } else {
            throw ValidationError("--storage \(text.prefix(64)): expected \(Self.expected)")
        }
    }
}

/// What `--bus` names.
enum BusSpec: Equatable {
    case auto
    case none
    case postgres(url: String)
    case redis(url: String)

    init(parsing text: String) throws(ValidationError) {
        switch text {
        case "auto": self = .auto
        case "none": self = .none
        case _ where text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"): self = .postgres(url: text)
        case _ where text.hasPrefix("redis://") || text.hasPrefix("redis+cluster://"): self = .redis(url: text)
        default:
            throw ValidationError(
                "--bus \(text.prefix(64)): expected auto, none, postgres://USER[:PASS]@HOST[:PORT]/DB or redis://[:PASS@]HOST[:PORT][/DB]")
        }
    }
}

extension StorageSpec {
    /// The storage's kind and place, without credentials.
    var name: String {
        switch self {
        case .memory: "memory"
        case .sqlite(let path): "sqlite \(path)"
        case .postgres(let url): "postgres \(url.split(separator: "@").last.map(String.init) ?? "")"
        case .redis(let url): "redis \(url.split(separator: "@").last.map(String.init) ?? String(url.dropFirst(url.hasPrefix("redis+") ? 16 : 8)))"
        case .dynamodb(let url): "dynamodb \(url.dropFirst("dynamodb://".count))"
        }
    }
}
