import Foundation
@_spi(Backend) import MCPSessionStorage

/// An error DynamoDB answered: its type (`ConditionalCheckFailedException`, …), message and
/// HTTP status, and for a cancelled transaction the reason of each of its items.
struct DynamoDBServiceError: Error, CustomStringConvertible, Sendable {
    /// The type without its namespace: `ConditionalCheckFailedException`.
    var type: String
    var message: String
    var status: Int
    /// For `TransactionCanceledException`: one code per item (`None`, `ConditionalCheckFailed`,
    /// `TransactionConflict`, …).
    var cancellationReasons: [String] = []
    /// Whether a failed condition's answer carried the item (`ReturnValuesOnConditionCheckFailure`).
    var returnedItem = false

    var description: String { "\(type) (HTTP \(status)): \(message)" }

    /// Parses an error answer's body.
    init(status: Int, body: JSONValue?) {
        self.status = status
        let type = body?[member: "__type"]?.stringValue ?? "HTTP\(status)"
        self.type = type.split(separator: "#").last.map(String.init) ?? type
        self.message = body?[member: "message"]?.stringValue ?? body?[member: "Message"]?.stringValue ?? ""
        returnedItem = body?[member: "Item"] != nil
        if case .array(let reasons)? = body?[member: "CancellationReasons"] {
            cancellationReasons = reasons.map { $0[member: "Code"]?.stringValue ?? "None" }
        }
    }

    /// Whether the AWS SDKs retry it: throttling, a server error, or a transaction that met
    /// another one (and nothing else stopped it).
    var isRetryable: Bool {
        if status >= 500 { return true }
        switch type {
        case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded", "TransactionInProgressException",
            "LimitExceededException":
            return true
        case "TransactionCanceledException":
            let failed = cancellationReasons.filter { $0 != "None" }
            return !failed.isEmpty && failed.allSatisfy { $0 == "TransactionConflict" }
        default:
            return false
        }
    }

    /// A single write's condition failed.
    var isConditionFailure: Bool { type == "ConditionalCheckFailedException" }

    /// A transaction was cancelled because the condition of item `index` failed.
    func conditionFailed(at index: Int) -> Bool {
        type == "TransactionCanceledException" && index < cancellationReasons.count && cancellationReasons[index] == "ConditionalCheckFailed"
    }

    /// A transaction was cancelled by a failed condition anywhere.
    var isTransactionConditionFailure: Bool {
        type == "TransactionCanceledException" && cancellationReasons.contains("ConditionalCheckFailed")
    }

    /// The item or request was too large for DynamoDB (400 KB an item, 4 MB a transaction).
    var isSizeLimit: Bool {
        type == "ValidationException"
            && (message.contains("Item size") || message.contains("size has exceeded")
                || message.contains("Transaction request")
                    && message.contains("size"))
    }
}

/// Turns what a DynamoDB call threw into the contract's error, naming the endpoint and table.
enum DynamoDBErrors {
    static func map(_ error: any Error, _ what: String, endpoint: String, table: String) -> SessionStorageError {
        switch error {
        case let error as SessionStorageError:
            return error
        case is TimeoutError:
            return SessionStorageError(.unavailable, "\(what): DynamoDB at \(endpoint) did not answer in time", underlying: error)
        case is CancellationError:
            return SessionStorageError(.unavailable, "\(what): cancelled", underlying: error)
        case let error as DynamoDBServiceError where error.isSizeLimit:
            return SessionStorageError(.limitExceeded, "\(what): larger than DynamoDB takes (\(error.message))", underlying: error)
        case let error as DynamoDBServiceError where error.isConditionFailure || error.isTransactionConditionFailure:
            return SessionStorageError(.versionConflict, "\(what): changed concurrently", underlying: error)
        case let error as DynamoDBServiceError where error.type == "ResourceNotFoundException":
            return SessionStorageError(
                .unavailable, "\(what): table \(table) does not exist at \(endpoint) (create it, or set createTable)", underlying: error)
        case let error as DynamoDBServiceError:
            return SessionStorageError(.unavailable, "\(what): DynamoDB at \(endpoint) refused: \(error)", underlying: error)
        default:
            return SessionStorageError(.unavailable, "\(what): cannot reach DynamoDB at \(endpoint) (\(error))", underlying: error)
        }
    }
}
