import Foundation
import MCPSessionStorage
import Testing

@testable import MCPSessionStorageDynamoDB

@Suite("AWS credentials")
struct CredentialsTests {
    static func provider(_ environment: [String: String], source: AWSCredentialSource = .standard) -> CredentialsProvider {
        CredentialsProvider(source: source, environment: environment, http: DynamoDBClient.sharedHTTPClient)
    }

    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("aws-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let file = """
        # comment
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = default/secret

        [work]
        aws_access_key_id=AKIAWORK
        aws_secret_access_key=work+secret
        aws_session_token = work-token
        """

    @Test("the environment first, then the shared file under AWS_PROFILE")
    func environmentAndFile() async throws {
        let path = try Self.temporaryFile(Self.file)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromEnvironment = try await Self.provider([
            "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env", "AWS_SESSION_TOKEN": "t", "AWS_SHARED_CREDENTIALS_FILE": path,
        ]).credentials()
        #expect(fromEnvironment == AWSCredentials(accessKeyID: "AKIAENV", secretAccessKey: "env", sessionToken: "t"))
        let byDefault = try await Self.provider(["AWS_SHARED_CREDENTIALS_FILE": path]).credentials()
        #expect(byDefault == AWSCredentials(accessKeyID: "AKIADEFAULT", secretAccessKey: "default/secret"))
        let work = try await Self.provider(["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "work"]).credentials()
        #expect(work == AWSCredentials(accessKeyID: "AKIAWORK", secretAccessKey: "work+secret", sessionToken: "work-token"))
        let named = try await Self.provider(["AWS_SHARED_CREDENTIALS_FILE": path], source: .profile("work")).credentials()
        #expect(named.accessKeyID == "AKIAWORK")
        await #expect { try await Self.provider(["AWS_SHARED_CREDENTIALS_FILE": path, "AWS_PROFILE": "none"]).credentials() } throws: {
            ($0 as? SessionStorageError)?.code == .unavailable
        }
    }

    @Test("the region from AWS_REGION, AWS_DEFAULT_REGION, the config file, else us-east-1")
    func region() throws {
        let config = try Self.temporaryFile("[profile work]\nregion = eu-central-1\n[default]\nregion=sa-east-1\n")
        defer { try? FileManager.default.removeItem(atPath: config) }
        typealias Configuration = DynamoDBSessionStorage.Configuration
        #expect(Configuration.defaultRegion(["AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "x"]) == "eu-west-3")
        #expect(Configuration.defaultRegion(["AWS_DEFAULT_REGION": "ca-central-1"]) == "ca-central-1")
        #expect(Configuration.defaultRegion(["AWS_CONFIG_FILE": config, "AWS_PROFILE": "work"]) == "eu-central-1")
        #expect(Configuration.defaultRegion(["AWS_CONFIG_FILE": config]) == "sa-east-1")
        #expect(Configuration.defaultRegion(["HOME": "/nonexistent"]) == "us-east-1")
    }

    @Test("the container endpoint, with its token file, and fetched again before expiry")
    func containerEndpoint() async throws {
        let soon = try await FaultProxy.start(upstream: "http://127.0.0.1:9", token: "Bearer secret", expiresIn: 120)
        defer { soon.stop() }
        let tokenFile = try Self.temporaryFile("Bearer secret\n")
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        let provider = Self.provider([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": soon.url + "/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
            "HOME": "/nonexistent",
        ])
        let first = try await provider.credentials()
        #expect(first.accessKeyID == "ASIAEXAMPLE1")
        #expect(first.sessionToken == "token-1")
        #expect(first.expiration != nil)
        // Valid for two more minutes: inside the refresh margin, so the next call fetches anew.
        let second = try await provider.credentials()
        #expect(second.accessKeyID == "ASIAEXAMPLE2")
        #expect(try await soon.stats()["credentials"] == 2)

        let later = try await FaultProxy.start(upstream: "http://127.0.0.1:9", token: "Bearer other", expiresIn: 3600)

        defer { later.stop() }
        let cached = Self.provider([:], source: .containerEndpoint(url: later.url + "/credentials", authorization: "Bearer other"))
        _ = try await cached.credentials()
        _ = try await cached.credentials()
        #expect(try await later.stats()["credentials"] == 1, "valid for an hour: fetched once")
        let refused = Self.provider([:], source: .containerEndpoint(url: later.url + "/credentials", authorization: "Bearer wrong"))
        await #expect(throws: (any Error).self) { try await refused.credentials() }
    }

    @Test(
        "a storage signs with container credentials against moto", .enabled(if: DynamoDBTestEnvironment.dynamo.shouldRun),
        .timeLimit(.minutes(1)))
    func storageWithContainerCredentials() async throws {
        let endpoint = try await FaultProxy.start(upstream: DynamoDBTestEnvironment.dynamo.url)
        defer { endpoint.stop() }
        let storage = try DynamoDBTestEnvironment.storage {
            $0.credentials = .containerEndpoint(url: endpoint.url + "/credentials", authorization: nil)
        }
        let session = try await storage.createSession()
        #expect(try await storage.session(session.id)?.id == session.id)
        #expect(try await endpoint.stats()["credentials"] == 1)
    }
}
