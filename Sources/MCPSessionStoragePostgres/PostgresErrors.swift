@_spi(Backend) import MCPSessionStorage
import PostgresNIO

/// Turns PostgresNIO's errors into the contract's.
enum PostgresErrors {
    static func map(_ error: any Error, _ what: String) -> SessionStorageError {
        switch error {
        case let error as SessionStorageError:
            return error
        case is TimeoutError:
            return SessionStorageError(.unavailable, "\(what): PostgreSQL did not answer in time", underlying: error)
        case is CancellationError:
            return SessionStorageError(.unavailable, "\(what): cancelled", underlying: error)
        case let error as PostgresDecodingError:
            return SessionStorageError(.corrupted, "\(what): a stored value does not decode", underlying: error)
        case let error as PSQLError:
            guard error.code == .server, let state = error.serverInfo?[.sqlState] else {
                return SessionStorageError(.unavailable, "\(what): cannot reach PostgreSQL (\(error.code))", underlying: error)
            }
            let message = error.serverInfo?[.message] ?? ""
            switch state {
            case "22P05", "22021", "22P02", "22023", "22025":
                // untranslatable character (NUL in jsonb), bad encoding, invalid text: the caller's value
                return SessionStorageError(.invalidInput, "\(what): PostgreSQL cannot store this value: \(message)", underlying: error)
            case "23503":
                // A foreign key: the row's session is gone.
                return SessionStorageError(.sessionNotFound, "\(what): the session does not exist", underlying: error)
            case "54000", "54001":
                return SessionStorageError(.limitExceeded, "\(what): \(message)", underlying: error)
            default:
                return SessionStorageError(.unavailable, "\(what): PostgreSQL refused (\(state)): \(message)", underlying: error)
            }
        default:
            return SessionStorageError(.unavailable, "\(what) failed", underlying: error)
        }
    }
}
