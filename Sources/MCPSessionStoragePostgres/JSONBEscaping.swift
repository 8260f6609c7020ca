import Foundation
import MCPSessionStorage
import PostgresNIO

/// PostgreSQL's `jsonb` cannot hold U+0000 in a string (`unsupported Unicode escape sequence`),
/// which every other backend stores, and JSON allows. So strings bound for the `jsonb` columns
/// (state, state keys, metadata, client info, capabilities) are escaped on the way in and
/// restored on the way out, with U+FDD0 (a noncharacter, reserved for uses like this one) as the
/// escape: U+0000 is written `U+FDD0 0`, and U+FDD0 itself `U+FDD0 U+FDD0`. Keys are escaped as
/// the values are, so `state -> $key` finds what `setState` stored.
///
/// Only a string holding U+0000 or U+FDD0 changes; any other value, the rule, is bound and read
/// as it was: the one cost is a scan of its JSON text for the two (`memchr`). A DBA reading the
/// columns by hand sees the escapes. Event payloads are `text` columns and need none.
///
/// A stored U+FDD0 followed by anything else (written by hand, or before this escape existed)
/// reads back unchanged.
enum JSONBEscaping {
    /// U+FDD0 in UTF-8. (Swift literals cannot spell noncharacters.)
    private static let escapeBytes: [UInt8] = [0xEF, 0xB7, 0x90]
    private static let escape = String(decoding: escapeBytes, as: UTF8.self)
    /// How the JSON writer spells U+0000.
    private static let nulInJSON = Array(#"\u0000"#.utf8)

    // MARK: Writing

    /// The JSON text to bind to a `jsonb` parameter.
    static func text(_ value: JSONValue) throws(SessionStorageError) -> String {
        try text(value, encoded: value.encoded())
    }

    /// The JSON text to bind to a `jsonb` parameter, given `value`'s compact encoding.
    static func text(_ value: JSONValue, encoded: Data) throws(SessionStorageError) -> String {
        let mayNeedEscapes = encoded.withUnsafeBytes { bytes in contains(nulInJSON, in: bytes) || contains(escapeBytes, in: bytes) }
        guard mayNeedEscapes else { return String(decoding: encoded, as: UTF8.self) }
        return String(decoding: try escaped(value).encoded(), as: UTF8.self)
    }

    /// A state key as the `jsonb` columns hold it (keys never hold U+0000; they may hold U+FDD0).
    static func key(_ key: String) -> String { escaped(key) }

    static func escaped(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(escaped(text))
        case .array(let elements): .array(elements.map(escaped))
        case .object(let members): .object(Dictionary(members.map { (escaped($0.key), escaped($0.value)) }, uniquingKeysWith: { first, _ in first }))
        case .null, .bool, .int, .double: value
        }
    }

    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value == 0 || $0.value == 0xFDD0 }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0: out += escape + "0"
            case 0xFDD0: out += escape + escape
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    // MARK: Reading

    /// `value` as read from a `jsonb` column whose wire bytes are `bytes`, escapes restored.
    static func restored(_ value: JSONValue, from bytes: ByteBufferView) -> JSONValue {
        let mayHoldEscapes = bytes.withContiguousStorageIfAvailable { contains(escapeBytes, in: UnsafeRawBufferPointer($0)) } ?? true
        return mayHoldEscapes ? restored(value) : value
    }

    static func restored(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(restored(text))
        case .array(let elements): .array(elements.map(restored))
        case .object(let members):
            .object(Dictionary(members.map { (restored($0.key), restored($0.value)) }, uniquingKeysWith: { first, _ in first }))
        case .null, .bool, .int, .double: value
        }
    }

    static func restored(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value == 0xFDD0 }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var scalars = text.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar.value == 0xFDD0 else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalars.next() {
            case let next? where next == "0": out += "\u{0}"
            case let next? where next.value == 0xFDD0: out += escape
            case let next?:
                out += escape
                out.unicodeScalars.append(next)
            case nil: out += escape
            }
        }
        return out
    }

    // MARK: Scanning

    /// Whether `needle` (not empty) occurs in `haystack`: `memchr` for its first byte, then a
    /// comparison of the rest.
    private static func contains(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Bool {
        guard let first = needle.first, var start = haystack.baseAddress, haystack.count >= needle.count else { return false }
        var remaining = haystack.count
        return needle.withUnsafeBytes { needleBytes in
            guard let needleBase = needleBytes.baseAddress else { return false }
            while remaining >= needle.count, let hit = memchr(start, Int32(first), remaining - needle.count + 1) {
                if memcmp(hit, needleBase, needle.count) == 0 { return true }
                let skipped = start.distance(to: UnsafeRawPointer(hit)) + 1
                start += skipped
                remaining -= skipped
            }
            return false
        }
    }
}
