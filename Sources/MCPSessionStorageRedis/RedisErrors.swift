import Foundation
@_spi(Backend) import MCPSessionStorage
import NIOCore
import NIOPosix

/// Turns what a Redis call threw into the contract's error, naming the servers.
enum RedisErrors {
    static func map(_ error: any Error, _ what: String, nodes: [String]) -> SessionStorageError {
        let servers = nodes.joined(separator: ",")
        switch error {
        case let error as SessionStorageError:
            return error
        case is TimeoutError, RedisConnectionError.timedOut:
            return SessionStorageError(.unavailable, "\(what): Redis at \(servers) did not answer in time", underlying: error)
        case is CancellationError:
            return SessionStorageError(.unavailable, "\(what): cancelled", underlying: error)
        case let error as RedisReplyError where error.kind == "OOM":
            // Full is the server's condition, not the caller's input: unavailable, as a server
            // that cannot take writes.
            return SessionStorageError(.unavailable, "\(what): Redis at \(servers) is out of memory (maxmemory reached)", underlying: error)
        case let error as RedisReplyError:
            return SessionStorageError(.unavailable, "\(what): Redis at \(servers) refused: \(error.message)", underlying: error)
        default:
            return SessionStorageError(.unavailable, "\(what): cannot reach Redis at \(servers) (\(describe(error)))", underlying: error)
        }
    }

    /// A connection failure in a few words: `connection refused`, `connect timeout`, ….
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            return error.connectionErrors.first.map { describe($0.error) } ?? "no address for the host"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case ChannelError.connectTimeout:
            return "connect timeout"
        case ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed, ChannelError.eof:
            return "connection closed"
        default:
            return "\(error)"
        }
    }
}
