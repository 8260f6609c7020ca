/// Flags from the environment, as container users configure services: every flag can be given
/// as `MCP_` and its name in capitals with `_` for `-` (`--storage` as `MCP_STORAGE`,
/// `--session-ttl` as `MCP_SESSION_TTL`). A flag on the command line wins over its variable.
enum EnvironmentFlags {
    /// The flags that take a value.
    static let names = [
        "host", "port", "storage", "cache", "cache-max-entries", "cache-max-bytes", "consistency", "bus", "bus-gap", "session-ttl",
        "header-timeout", "max-connections",
    ]

    /// The variable that stands for `flag`: `MCP_SESSION_TTL` for `session-ttl`.
    static func variable(for flag: String) -> String {
        "MCP_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// `arguments` with `--flag=VALUE` added for every flag they lack whose variable is set.
    static func arguments(_ arguments: [String], environment: [String: String]) -> [String] {
        var result = arguments
        for flag in names {
            let given = arguments.contains { $0 == "--\(flag)" || $0.hasPrefix("--\(flag)=") }
            if !given, let value = environment[variable(for: flag)] { result.append("--\(flag)=\(value)") }
        }
        return result
    }
}
