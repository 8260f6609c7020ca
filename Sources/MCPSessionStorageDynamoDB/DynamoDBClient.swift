import AsyncHTTPClient
import Foundation
@_spi(Backend) import MCPSessionStorage
import NIOCore
import NIOHTTP1

/// A small client for DynamoDB's JSON protocol: each operation is a `POST /` with the
/// operation in `X-Amz-Target` (`DynamoDB_20120810.GetItem`), a JSON body, and a SigV4
/// signature. Throttling, server errors, dropped connections and transaction conflicts are
/// retried with capped exponential backoff and full jitter, as the AWS SDKs do; the caller bounds
/// the whole call with its deadline.
final class DynamoDBClient: Sendable {
    /// The HTTP client every storage in the process shares: it is never shut down, so storages
    /// made and dropped freely (tests, the conformance suite) never leak or trap on one.
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(60))
        configuration.connectionPool = .init(idleTimeout: .seconds(55), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    let endpoint: String
    let signer: SigV4Signer
    let credentials: CredentialsProvider
    let retry: DynamoDBSessionStorage.RetryPolicy
    private let http: HTTPClient
    private let host: String

    init(endpoint: String, region: String, credentials: CredentialsProvider, retry: DynamoDBSessionStorage.RetryPolicy) throws(SessionStorageError) {
        guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), let host = url.host, !host.isEmpty else {
            throw SessionStorageError(
                .invalidInput, "the DynamoDB endpoint must be an http:// or https:// URL, got \(endpoint.prefix(64).debugDescription)")
        }
        self.endpoint = endpoint
        self.signer = SigV4Signer(service: "dynamodb", region: region)
        self.credentials = credentials
        self.retry = retry
        self.http = Self.sharedHTTPClient
        let defaultPort = scheme == "https" ? 443 : 80
        self.host = url.port.map { $0 == defaultPort ? host : "\(host):\($0)" } ?? host
    }

    /// Runs `operation` (`GetItem`, …) with `body`, retrying what may be retried.
    /// - Returns: The answer's JSON object.
    /// - Throws: ``DynamoDBServiceError`` for an error DynamoDB answered, or the HTTP client's error.
    func call(_ operation: String, _ body: [String: JSONValue]) async throws -> [String: JSONValue] {
        let payload = try JSONValue.object(body).encoded()
        var attempt = 0
        while true {
            do {
                return try await send(operation, payload)
            } catch {
                attempt += 1
                guard attempt < retry.maxAttempts, Self.isRetryable(error), !Task.isCancelled else { throw error }
                try await Task.sleep(for: retry.delay(afterAttempt: attempt))
            }
        }
    }

    static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case let error as DynamoDBServiceError: return error.isRetryable
        case is CancellationError, is TimeoutError, is SessionStorageError: return false
        default: return true  // the connection failed or dropped
        }
    }

    /// The headers of a signed request (for the benchmark of the client's own cost too).
    func signedHeaders(_ operation: String, _ payload: Data, credentials: AWSCredentials, at date: Date = Date()) -> HTTPHeaders {
        let amzDate = SigV4Signer.amzDate(date)
        var signed: [(String, String)] = [
            ("content-type", "application/x-amz-json-1.0"), ("host", host), ("x-amz-date", amzDate),
            ("x-amz-target", "DynamoDB_20120810." + operation),
        ]
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        let signature = signer.sign(
            method: "POST", path: "/", headers: signed, payloadHash: SigV4Signer.hexSHA256(payload), amzDate: amzDate, credentials: credentials)
        var headers = HTTPHeaders()
        for (name, value) in signed where name != "host" { headers.add(name: name, value: value) }
        headers.add(name: "authorization", value: signature.authorization)
        return headers
    }

    private func send(_ operation: String, _ payload: Data) async throws -> [String: JSONValue] {
        let credentials = try await credentials.credentials()
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers = signedHeaders(operation, payload, credentials: credentials)
        request.body = .bytes(ByteBuffer(bytes: payload))
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        let json: JSONValue? = body.readableBytes == 0 ? nil : try? Self.decode(body)
        guard response.status == .ok else { throw DynamoDBServiceError(status: Int(response.status.code), body: json) }
        guard case .object(let object)? = json else {
            throw SessionStorageError.corrupted("DynamoDB answered \(operation) with a body that is not a JSON object")
        }
        return object
    }

    static func decode(_ buffer: ByteBuffer) throws -> JSONValue {
        try buffer.withUnsafeReadableBytes { raw in
            try JSONValue.decode(bytes: UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
        }
    }
}
