import Foundation

/// JSON text known to parse: how a stored event carries its message.
///
/// Reading an event back only checks its stored text; nothing is decoded into a ``JSONValue``
/// until someone asks for ``value``. A server that re-sends stored events (a resumed stream)
/// never needs the tree at all, and replaying a hundred events costs a scan of their bytes
/// instead of a hundred trees of dictionaries and strings.
///
/// Text made from a ``JSONValue`` is compact with sorted keys, as every backend stores it, so
/// equal values make equal texts; two texts are equal when their bytes are.
public struct JSONText: Sendable, Hashable, CustomStringConvertible {
    /// The UTF-8 bytes of the text.
    public let bytes: [UInt8]

    /// Encodes `value` compactly, with object keys sorted.
    /// - Throws: `invalidInput` for a non-finite number, which JSON cannot hold.
    public init(_ value: JSONValue) throws(SessionStorageError) {
        var out = [UInt8]()
        out.reserveCapacity(64)
        try JSONCodec.write(value, into: &out)
        bytes = out
    }

    /// Checks that `bytes` are one JSON value, by the rules of ``JSONValue/decode(_:)``, without
    /// decoding it.
    /// - Throws: `invalidInput` for malformed text; backends rethrow it as `corrupted`.
    public init(validating bytes: [UInt8]) throws(SessionStorageError) {
        let result: Result<Void, JSONCodec.SyntaxError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONCodec.SyntaxError) in try JSONCodec.validate(buffer) }
        }
        do { try result.get() } catch { throw SessionStorageError(.invalidInput, "malformed JSON: \(error)", underlying: error) }
        self.bytes = bytes
    }

    /// Text already known to be valid JSON: the output of ``JSONValue/encoded()`` or of
    /// ``SessionPolicy/encodeEvent(_:)``.
    @_spi(Backend) public init(encoded bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The decoded value.
    ///
    /// Decoding cannot fail: every initializer checked or produced the text.
    public var value: JSONValue {
        let decoded: Result<JSONValue, JSONCodec.SyntaxError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONCodec.SyntaxError) -> JSONValue in try JSONCodec.read(buffer) }
        }
        // Unreachable for checked text; `null` rather than a trap if an SPI caller broke the rule.
        return (try? decoded.get()) ?? .null
    }

    /// The text as a string.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { string }
}
