import ArgumentParser

/// What `--storage` names.
enum StorageSpec: Equatable {
    case memory
    case sqlite(path: String)
    case postgres(url: String)

    /// Parses `memory:`, `sqlite:PATH` or `postgres://USER[:PASS]@HOST[:PORT]/DB`.
    init(parsing text: String) throws(ValidationError) {
        if text == "memory:" {
            self = .memory
        } else if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw ValidationError("--storage sqlite: needs a file path, e.g. sqlite:mcp_sessions.db") }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else if let scheme = ["redis", "rediss", "dynamodb"].first(where: { text.hasPrefix("\($0):") }) {
            throw ValidationError(
                "--storage \(scheme): this build has no \(scheme) backend yet; use memory:, sqlite:PATH or postgres://USER[:PASS]@HOST[:PORT]/DB")
        } else {
            throw ValidationError("--storage \(text.prefix(64)): expected memory:, sqlite:PATH or postgres://USER[:PASS]@HOST[:PORT]/DB")
        }
    }
}

/// What `--bus` names.
enum BusSpec: Equatable {
    case auto
    case none
    case postgres(url: String)

    init(parsing text: String) throws(ValidationError) {
        switch text {
        case "auto": self = .auto
        case "none": self = .none
        case _ where text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"): self = .postgres(url: text)
        default: throw ValidationError("--bus \(text.prefix(64)): expected auto, none or postgres://USER[:PASS]@HOST[:PORT]/DB")
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
        }
    }
}
