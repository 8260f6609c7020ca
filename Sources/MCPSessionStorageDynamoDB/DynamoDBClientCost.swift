import Foundation
@_spi(Backend) import MCPSessionStorage

/// The client's own cost per operation, without the network: what the benchmark compares with
/// botocore's. Not for users: behind `@_spi(Benchmark)`.
@_spi(Benchmark)
public enum DynamoDBClientCost {
    /// A session read's answer as DynamoDB sends it (`Query`, the session item and three state
    /// items), and the average time of the client's part of that read: building and encoding the
    /// request, signing it, decoding the answer and turning its items into a `SessionInfo`.
    /// - Parameter iterations: How many reads to average over.
    /// - Returns: The answer's bytes (for the botocore side) and the time per read.
    public static func sessionRead(iterations: Int) throws -> (answer: Data, perOperation: Duration) {
        let credentials = AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")
        let client = try DynamoDBClient(
            endpoint: "http://127.0.0.1:63900", region: "us-east-1",
            credentials: CredentialsProvider(source: .fixed(credentials), http: DynamoDBClient.sharedHTTPClient), retry: .init())
        let id = try SessionID(validating: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        let session: DynamoItem = [
            "pk": AttributeValue.s(id.rawValue), "sk": AttributeValue.s("s"), "c": AttributeValue.n(1_764_000_000_000_000),
            "a": AttributeValue.n(1_764_000_000_000_000), "i": AttributeValue.bool(true), "p": AttributeValue.s("2025-06-18"),
            "ci": AttributeValue.s(#"{"name":"inspector","version":"1.2.3"}"#),
            "cc": AttributeValue.s(#"{"roots":{"listChanged":true},"sampling":{}}"#),
            "sc": AttributeValue.s(#"{"tools":{"listChanged":false}}"#), "m": AttributeValue.s(#"{"tenant":"acme"}"#), "v": AttributeValue.n(7),
            "b": AttributeValue.n(60), "e": AttributeValue.n(12), "f": AttributeValue.n(1), "ab": AttributeValue.s("3"),
            "ttl": AttributeValue.n(1_764_003_600),
        ]
        var items: [JSONValue] = [.object(session)]
        for (key, value) in [("counter", "42"), ("profile", #"{"name":"Zoë","tags":["a","b"]}"#), ("cursor", #""abc""#)] {
            items.append([
                "pk": AttributeValue.s(id.rawValue), "sk": AttributeValue.s("t#" + key), "j": AttributeValue.s(value),
                "n": AttributeValue.n(key.utf8.count + value.utf8.count),
            ])
        }
        let answer = try JSONValue.object(["Items": .array(items), "Count": 4, "ScannedCount": 4]).encoded()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<max(1, iterations) {
            let body: [String: JSONValue] = [
                "TableName": "mcp-sessions", "KeyConditionExpression": "pk = :id AND sk >= :s", "ConsistentRead": true,
                "ExpressionAttributeValues": [":id": AttributeValue.s(id.rawValue), ":s": AttributeValue.s(DynamoDBLayout.sessionSK)],
            ]
            let payload = try JSONValue.object(body).encoded()
            _ = client.signedHeaders("Query", payload, credentials: credentials)
            let decoded = try answer.withUnsafeBytes { raw in
                try JSONValue.decode(bytes: UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: UInt8.self), count: raw.count))
            }
            guard case .object(let object) = decoded else { throw SessionStorageError.corrupted("answer") }
            let found = object.items()
            guard let item = found.first(where: { $0.string("sk") == DynamoDBLayout.sessionSK }) else {
                throw SessionStorageError.corrupted("answer")
            }
            _ = try DynamoDBLayout.session(id, item: item, state: Array(found.dropFirst()))
        }
        return (answer, (clock.now - start) / max(1, iterations))
    }
}
