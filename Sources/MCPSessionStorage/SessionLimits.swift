import Foundation

/// The limits every backend enforces, with the same errors, so a session behaves the same on
/// any of them. Exceeding one throws ``SessionStorageError/Code/limitExceeded`` and writes
/// nothing; no value is ever truncated.
public struct SessionLimits: Sendable, Hashable {
    /// The largest state value, as compact JSON bytes. Default 1 MiB.
    public var maxStateValueBytes: Int = 1 << 20
    /// The largest total state of one session: the sum of its keys' and values' bytes. Default 8 MiB.
    public var maxStateBytesPerSession: Int = 8 << 20
    /// The longest state key, in UTF-8 bytes. Default 256.
    public var maxKeyBytes: Int = 256
    /// The largest event payload, as compact JSON bytes. Default 1 MiB.
    public var maxEventBytes: Int = 1 << 20
    /// Events kept per session; appending past it trims the oldest. Default 1000.
    public var maxEventsPerSession: Int = 1000
    /// `touchSession` writes `lastActivity` only when the stored one is older than this, so
    /// requests do not turn into writes. Default 15 seconds: far below the default 30-minute TTL.
    public var activityWriteInterval: Duration = .seconds(15)

    public init() {}

    public init(
        maxStateValueBytes: Int = 1 << 20,
        maxStateBytesPerSession: Int = 8 << 20,
        maxKeyBytes: Int = 256,
        maxEventBytes: Int = 1 << 20,
        maxEventsPerSession: Int = 1000,
        activityWriteInterval: Duration = .seconds(15)
    ) {
        self.maxStateValueBytes = maxStateValueBytes
        self.maxStateBytesPerSession = maxStateBytesPerSession
        self.maxKeyBytes = maxKeyBytes
        self.maxEventBytes = maxEventBytes
        self.maxEventsPerSession = maxEventsPerSession
        self.activityWriteInterval = activityWriteInterval
    }
}

extension SessionLimits {
    /// Checks a state key and returns nothing; throws `invalidInput` for an empty key, one that is
    /// too long, or one holding NUL (which PostgreSQL text cannot store).
    public func checkKey(_ key: String) throws(SessionStorageError) {
        guard !key.isEmpty else { throw SessionStorageError(.invalidInput, "state key must not be empty") }
        guard key.utf8.count <= maxKeyBytes else {
            throw SessionStorageError(.limitExceeded, "state key is \(key.utf8.count) bytes; the limit is \(maxKeyBytes)")
        }
        guard !key.utf8.contains(0) else { throw SessionStorageError(.invalidInput, "state key must not contain NUL") }
    }

    /// Encodes a state value and checks its size; returns the JSON bytes to store.
    public func encodeStateValue(_ value: JSONValue, forKey key: String) throws(SessionStorageError) -> Data {
        try checkKey(key)
        let data = try value.encoded()
        guard data.count <= maxStateValueBytes else {
            throw SessionStorageError(.limitExceeded, "state value for '\(key)' is \(data.count) bytes; the limit is \(maxStateValueBytes)")
        }
        return data
    }

    /// What one state entry counts against the per-session limit: its key's UTF-8 bytes plus
    /// its value's JSON bytes. Every backend counts with this, so limits agree across them.
    public static func entryBytes(key: String, value: Data) -> Int { key.utf8.count + value.count }

    /// Throws `limitExceeded` if a session's state would total `bytes`.
    public func checkStateTotal(_ bytes: Int) throws(SessionStorageError) {
        guard bytes <= maxStateBytesPerSession else {
            throw SessionStorageError(.limitExceeded, "session state would be \(bytes) bytes; the limit is \(maxStateBytesPerSession)")
        }
    }

    /// Encodes a whole state dictionary (for create and update), checking every key, every value
    /// and the total.
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

    /// Checks an event's fields and encodes its payload (`nil` for a priming event).
    public func encodeEvent(_ event: NewEvent) throws(SessionStorageError) -> Data? {
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
        let data = try payload.encoded()
        guard data.count <= maxEventBytes else {
            throw SessionStorageError(.limitExceeded, "event payload is \(data.count) bytes; the limit is \(maxEventBytes)")
        }
        return data
    }
}

/// A state dictionary ready to store: each value's JSON, what each entry counts against the
/// per-session limit, and their sum.
public struct EncodedState: Sendable {
    public var values: [String: Data] = [:]
    public var sizes: [String: Int] = [:]
    public var total = 0
}
