import Foundation
@_spi(Backend) import MCPSessionStorage

/// Creating the table: its definition, and waiting until it and its indexes are ACTIVE.
enum DynamoDBTable {
    /// The `CreateTable` request: on-demand billing, the key `(pk, sk)`, the local index
    /// `stream (pk, x)` and the global indexes `activity (ab, a)` and `ids (ab, pk)`.
    static func definition(_ table: String) -> [String: JSONValue] {
        func attribute(_ name: String, _ type: String) -> JSONValue { ["AttributeName": .string(name), "AttributeType": .string(type)] }
        func keys(_ hash: String, _ range: String) -> JSONValue {
            [["AttributeName": .string(hash), "KeyType": "HASH"], ["AttributeName": .string(range), "KeyType": "RANGE"]]
        }
        return [
            "TableName": .string(table),
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [attribute("pk", "S"), attribute("sk", "S"), attribute("x", "S"), attribute("ab", "S"), attribute("a", "N")],
            "KeySchema": keys("pk", "sk"),
            "LocalSecondaryIndexes": [
                ["IndexName": .string(DynamoDBLayout.streamIndex), "KeySchema": keys("pk", "x"), "Projection": ["ProjectionType": "ALL"]]
            ],
            "GlobalSecondaryIndexes": [
                ["IndexName": .string(DynamoDBLayout.activityIndex), "KeySchema": keys("ab", "a"), "Projection": ["ProjectionType": "KEYS_ONLY"]],
                ["IndexName": .string(DynamoDBLayout.idsIndex), "KeySchema": keys("ab", "pk"), "Projection": ["ProjectionType": "KEYS_ONLY"]],
            ],
        ]
    }

    /// Creates the table if it is missing, waits until it and its indexes are ACTIVE, and turns
    /// on DynamoDB's own expiry on `ttl`.
    static func create(_ table: String, client: DynamoDBClient) async throws {
        do {
            _ = try await client.call("CreateTable", definition(table))
        } catch let error as DynamoDBServiceError where error.type == "ResourceInUseException" {
            // It exists, or is being created: wait for it below.
        }
        try await waitUntilActive(table, client: client)
        do {
            _ = try await client.call(
                "UpdateTimeToLive", ["TableName": .string(table), "TimeToLiveSpecification": ["Enabled": true, "AttributeName": "ttl"]])
        } catch let error as DynamoDBServiceError where error.type == "ValidationException" {
            // TTL already on (DynamoDB refuses to enable it twice).
        }
    }

    /// Polls `DescribeTable` until the table and every index are ACTIVE.
    static func waitUntilActive(_ table: String, client: DynamoDBClient) async throws {
        var pause = Duration.milliseconds(50)
        while true {
            let answer = try await client.call("DescribeTable", ["TableName": .string(table)])
            let description = answer.item("Table") ?? [:]
            let indexes: [JSONValue] = {
                if case .array(let list)? = description["GlobalSecondaryIndexes"] { return list }
                return []
            }()
            let tableActive = description["TableStatus"]?.stringValue == "ACTIVE"
            let indexesActive = indexes.allSatisfy { $0[member: "IndexStatus"]?.stringValue ?? "ACTIVE" == "ACTIVE" }
            if tableActive && indexesActive { return }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }
}
