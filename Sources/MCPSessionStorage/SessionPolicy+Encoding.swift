import Foundation

// Checks and encodings every backend applies before it writes, so limits agree across them.
// Part of the backend kit: `@_spi(Backend) import MCPSessionStorage`.

extension SessionPolicy {
    /// Checks a state key: `invalidInput` for an empty key or one holding NUL (which PostgreSQL
    /// text cannot store), `limitExceeded` for one longer than ``maxKeyBytes``.
    @_spi(Backend)
    public func checkKey(_ key: String) throws(SessionStorageError) {
        guard !key.isEmpty else { throw SessionStorageError(.invalidInput, "state key must not be empty") }
        guard key.utf8.count <= maxKeyBytes else {
            throw SessionStorageError(.limitExceeded, "state key is \(key.utf8.count) bytes; the limit is \(maxKeyBytes)")
        }
        guard !key.utf8.contains(0) else { throw SessionStorageError(.invalidInput, "state key must not contain NUL") }
    }

    /// Encodes a state value and checks its key and size.
    /// - Returns: The JSON bytes to store.
    /// - Throws: `invalidInput` or `limitExceeded` (see ``checkKey(_:)`` and ``maxStateValueBytes``).
    @_spi(Backend)
    public func encodeStateValue(_ value: JSONValue, forKey key: String) throws(SessionStorageError) -> Data {
        try checkKey(key)
        let data = try value.encoded()
        guard data.count <= maxStateValueBytes else {
            throw SessionStorageError(.limitExceeded, "state value for '\(key)' is \(data.count) bytes; the limit is \(maxStateValueBytes)")
        }
        return data
    }

    /// What one state entry counts against ``maxStateBytesPerSession``: its key's UTF-8 bytes
    /// plus its value's JSON bytes.
    @_spi(Backend)
    public static func entryBytes(key: String, value: Data) -> Int { key.utf8.count + value.count }

    /// Throws `limitExceeded` if a session's state would total `bytes`.
    @_spi(Backend)
    public func checkStateTotal(_ bytes: Int) throws(SessionStorageError) {
        guard bytes <= maxStateBytesPerSession else {
            throw SessionStorageError(.limitExceeded, "session state would be \(bytes) bytes; the limit is \(maxStateBytesPerSession)")
        }
    }

    /// Encodes a whole state dictionary (for create and update), checking every key, every
    /// value and the total.
    @_spi(Backend)
    public func encodeState(_ state: [String: JSONValue]) throws(SessionStorageError) -> EncodedState {
        var encoded = EncodedState()
        for (key, value) in state {
            let data = try encodeStateValue(value, forKey: key)
            let size = Self.entryBytes(key: key, value: data)
            encoded.values[key] = data
            encoded.sizes[key] = size
            encoded.total += size
        }
        try checkStateTotal(encoded.total)
        return encoded
    }

    /// Checks an event's fields and encodes its payload.
    /// - Returns: The payload's JSON text; `nil` for an event without data.
    /// - Throws: `invalidInput` for a malformed type or a negative retry; `limitExceeded` for a
    ///   payload over ``maxEventBytes``.
    @_spi(Backend)
    public func encodeEvent(_ event: NewEvent) throws(SessionStorageError) -> JSONText? {
        if let type = event.type {
            guard !type.isEmpty, type.utf8.count <= 64, !type.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) else {
                throw SessionStorageError(.invalidInput, "event type must be 1–64 bytes without line breaks or NUL")
            }
        }
        if let retry = event.retryMilliseconds, retry < 0 {
            throw SessionStorageError(.invalidInput, "retry must not be negative")
        }
        if let retry = event.retryMilliseconds, retry > Int32.max {
            throw SessionStorageError(.invalidInput, "retry must be at most \(Int32.max) ms")
        }
        guard let payload = event.data else { return nil }
        let text = try JSONText(payload)
        guard text.bytes.count <= maxEventBytes else {
            throw SessionStorageError(.limitExceeded, "event payload is \(text.bytes.count) bytes; the limit is \(maxEventBytes)")
        }
        return text
    }
}

/// A state dictionary ready to store: each value's JSON, what each entry counts against the
/// per-session limit, and their sum.
@_spi(Backend)
public struct EncodedState: Sendable {
    public var values: [String: Data] = [:]
    public var sizes: [String: Int] = [:]
    public var total = 0
}

extension Duration {
    /// This duration in seconds, as `TimeInterval`.
    @_spi(Backend)
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
