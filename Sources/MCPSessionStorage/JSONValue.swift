import Foundation

/// A JSON value: what session state, metadata, capabilities and event payloads hold.
///
/// Integers and floating-point numbers are kept apart so that an `Int64` written into state
/// reads back as the same `Int64`, not as a `Double` that lost its low bits.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "Not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text (`NaN` or `Infinity` for a non-finite number, which JSON cannot hold).
    public var description: String {
        if let data = try? encoded() { return String(decoding: data, as: UTF8.self) }
        if case .double(let number) = self { return "\(number)" }
        return "<not JSON: holds a non-finite number>"
    }
}

extension JSONValue {
    /// The compact JSON text of this value, with object keys sorted so equal values encode equally.
    /// - Throws: `invalidInput` for a non-finite number, which JSON cannot hold.
    public func encoded() throws(SessionStorageError) -> Data {
        try JSONCodec.write(self)
    }

    /// Parses JSON text strictly (RFC 8259: no trailing commas, comments or NaN; valid UTF-8;
    /// at most 512 levels deep). Malformed text is `invalidInput`; the storage layers rethrow it
    /// as `corrupted` when the text came from a backend.
    public static func decode(_ data: Data) throws(SessionStorageError) -> JSONValue {
        do {
            return try JSONCodec.read(data)
        } catch {
            throw SessionStorageError(.invalidInput, "malformed JSON: \(error)", underlying: error)
        }
    }

    /// Parses JSON text in place (no copy into `Data`), as ``decode(_:)`` does; for backends
    /// reading straight out of a driver's buffer.
    public static func decode(bytes: UnsafeBufferPointer<UInt8>) throws(SessionStorageError) -> JSONValue {
        do {
            return try JSONCodec.read(bytes)
        } catch {
            throw SessionStorageError(.invalidInput, "malformed JSON: \(error)", underlying: error)
        }
    }

    /// Converts any `Encodable` value into a `JSONValue`.
    public init(encoding value: some Encodable) throws(SessionStorageError) {
        do {
            self = try JSONCodec.read(try JSONCoding.encoder.encode(value))
        } catch {
            throw SessionStorageError(.invalidInput, "value of type \(type(of: value)) cannot be encoded as JSON", underlying: error)
        }
    }

    /// Decodes this value as `T`.
    public func decode<T: Decodable>(as type: T.Type) throws(SessionStorageError) -> T {
        do {
            return try JSONCoding.decoder.decode(T.self, from: try JSONCodec.write(self))
        } catch {
            throw SessionStorageError(.invalidInput, "stored value does not decode as \(T.self)", underlying: error)
        }
    }
}

/// Shared coders. `JSONEncoder`/`JSONDecoder` are `Sendable` and safe to use concurrently
/// once configured, and configuring them once saves an allocation per call on hot paths.
enum JSONCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
    static let decoder = JSONDecoder()
}

extension JSONValue {
    /// The member `key` of an object; `nil` for a missing member or a value that is not an object.
    public subscript(member key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The number of an integer value; `nil` for any other value.
    public var intValue: Int64? {
        guard case .int(let number) = self else { return nil }
        return number
    }

    /// The text of a string value; `nil` for any other value.
    public var stringValue: String? {
        guard case .string(let text) = self else { return nil }
        return text
    }
}
