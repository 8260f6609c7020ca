import Foundation

/// An AWS access key: what SigV4 signs with.
public struct AWSCredentials: Sendable, Hashable {
    /// The access key id (`AKIA…`, or `ASIA…` for temporary credentials).
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary credentials, sent as `X-Amz-Security-Token`.
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-lived keys.
    public var expiration: Date?

    /// - Parameters:
    ///   - accessKeyID: The access key id.
    ///   - secretAccessKey: The secret access key.
    ///   - sessionToken: The session token of temporary credentials.
    ///   - expiration: When temporary credentials expire.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }
}

/// Where the DynamoDB backend finds its credentials.
public enum AWSCredentialSource: Sendable, Hashable {
    /// The way AWS tools look, first found wins: the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) under `AWS_PROFILE` (default
    /// `default`), then the container credentials endpoint of ECS and Lambda
    /// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), refreshed
    /// before they expire.
    case standard
    /// These credentials, always.
    case fixed(AWSCredentials)
    /// One profile of the shared credentials file.
    case profile(String)
    /// The container credentials endpoint at this URL (for tests and unusual setups).
    case containerEndpoint(url: String, authorization: String?)
}

/// Reads the shared credentials file (an INI file of `[profile]` sections of `key = value`).
enum SharedCredentialsFile {
    /// The file's path: `AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`.
    static func path(_ environment: [String: String]) -> String {
        if let path = environment["AWS_SHARED_CREDENTIALS_FILE"], !path.isEmpty { return path }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.aws/credentials"
    }

    /// The sections of an INI text, by name (`[profile name]` is read as `name`, as the config file writes it).
    static func sections(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst("profile ".count)).trimmingCharacters(in: .whitespaces) }
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[section]?[key] = value
        }
        return sections
    }

    /// The credentials of `profile` in the file at `path`, or `nil` when the file or the profile
    /// has none.
    static func credentials(path: String, profile: String) -> AWSCredentials? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let section = sections(text)[profile],
            let key = section["aws_access_key_id"], let secret = section["aws_secret_access_key"], !key.isEmpty, !secret.isEmpty
        else { return nil }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: section["aws_session_token"])
    }

    /// The region of `profile` in the config file (`AWS_CONFIG_FILE`, or `~/.aws/config`).
    static func region(_ environment: [String: String], profile: String) -> String? {
        let home = environment["HOME"] ?? NSHomeDirectory()
        let path = environment["AWS_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.aws/config"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return sections(text)[profile]?["region"]
    }
}
