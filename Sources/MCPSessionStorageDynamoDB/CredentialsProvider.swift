import AsyncHTTPClient
import Foundation
@_spi(Backend) import MCPSessionStorage
import NIOCore
import Synchronization

/// Finds credentials from an ``AWSCredentialSource`` and keeps them until shortly before they
/// expire, so a request usually costs no lookup at all.
final class CredentialsProvider: Sendable {
    /// How long before their expiration temporary credentials are fetched again. The container
    /// endpoint hands out credentials valid for hours and renews them well before the end; five
    /// minutes is what the AWS SDKs leave.
    static let refreshMargin: TimeInterval = 300

    private let source: AWSCredentialSource
    private let environment: [String: String]
    private let http: HTTPClient
    private let cached = Mutex<AWSCredentials?>(nil)
    private let fetches = Atomic<Int>(0)

    init(source: AWSCredentialSource, environment: [String: String] = ProcessInfo.processInfo.environment, http: HTTPClient) {
        self.source = source
        self.environment = environment
        self.http = http
    }

    /// How many times credentials were looked up (for tests: a refresh is a lookup).
    var lookups: Int { fetches.load(ordering: .relaxed) }

    /// Credentials valid for at least ``refreshMargin`` more, fetched again when needed.
    func credentials() async throws -> AWSCredentials {
        if let current = cached.withLock({ $0 }), Self.isFresh(current) { return current }
        let fresh = try await resolve()
        fetches.add(1, ordering: .relaxed)
        cached.withLock { $0 = fresh }
        return fresh
    }

    static func isFresh(_ credentials: AWSCredentials, now: Date = Date()) -> Bool {
        guard let expiration = credentials.expiration else { return true }
        return expiration.timeIntervalSince(now) > refreshMargin
    }

    private func resolve() async throws -> AWSCredentials {
        switch source {
        case .fixed(let credentials):
            return credentials
        case .profile(let profile):
            let path = SharedCredentialsFile.path(environment)
            guard let credentials = SharedCredentialsFile.credentials(path: path, profile: profile) else {
                throw SessionStorageError(.unavailable, "no credentials for profile \(profile) in \(path)")
            }
            return credentials
        case .containerEndpoint(let url, let authorization):
            return try await fetchContainerCredentials(url: url, authorization: authorization)
        case .standard:
            if let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !key.isEmpty, !secret.isEmpty {
                let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
                return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
            }
            let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
            if let credentials = SharedCredentialsFile.credentials(path: SharedCredentialsFile.path(environment), profile: profile) {
                return credentials
            }
            if let endpoint = containerEndpoint() {
                return try await fetchContainerCredentials(url: endpoint, authorization: try containerAuthorization())
            }
            throw SessionStorageError(
                .unavailable,
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in \(SharedCredentialsFile.path(environment)), "
                    + "or run where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set")
        }
    }

    /// The container credentials endpoint the environment names, if any.
    func containerEndpoint() -> String? {
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            return "http://169.254.170.2" + relative
        }
        if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty { return full }
        return nil
    }

    /// The `Authorization` header the endpoint wants: the token file's content, or the token.
    func containerAuthorization() throws -> String? {
        if let path = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !path.isEmpty {
            return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Asks the container credentials endpoint: `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`.
    private func fetchContainerCredentials(url: String, authorization: String?) async throws -> AWSCredentials {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let response = try await http.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw SessionStorageError(.unavailable, "the container credentials endpoint \(url) answered \(response.status.code)")
        }
        let json = try JSONValue.decode(Data(body.readableBytesView))
        guard let key = json[member: "AccessKeyId"]?.stringValue, let secret = json[member: "SecretAccessKey"]?.stringValue else {
            throw SessionStorageError(.unavailable, "the container credentials endpoint \(url) answered without AccessKeyId and SecretAccessKey")
        }
        let expiration = json[member: "Expiration"]?.stringValue.flatMap { ISO8601DateFormatter().date(from: $0) }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: json[member: "Token"]?.stringValue, expiration: expiration)
    }
}
