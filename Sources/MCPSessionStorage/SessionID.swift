import Foundation

/// A session id: 1–128 characters of visible ASCII (0x21–0x7E), as the MCP specification
/// requires of `Mcp-Session-Id`.
///
/// The only ways to get one check the text, so a backend never sees an id outside the contract:
///
/// ```swift
/// let fresh = SessionID.generate()                    // UUID v7, what servers assign
/// let fromHeader = try SessionID(validating: header)  // invalidInput if malformed
/// ```
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    /// The id's text.
    public let rawValue: String

    /// The longest id accepted.
    public static let maxLength = 128

    /// Checks `text` against the contract.
    /// - Throws: ``SessionStorageError/Code/invalidInput`` if it is empty, longer than 128
    ///   characters, or holds anything outside visible ASCII (spaces, control characters, NUL,
    ///   non-ASCII).
    public init(validating text: String) throws(SessionStorageError) {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= Self.maxLength else {
            throw SessionStorageError(.invalidInput, "session id must be 1–\(Self.maxLength) characters, got \(bytes.count)")
        }
        guard bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw SessionStorageError(.invalidInput, "session id must be visible ASCII (0x21–0x7E)")
        }
        self.rawValue = text
    }

    private init(unchecked text: String) { self.rawValue = text }

    /// A new UUID v7 id (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits from the
    /// system's CSPRNG, so ids sort by creation time and cannot be guessed.
    public static func generate() -> SessionID {
        var generator = SystemRandomNumberGenerator()
        return SessionID(unchecked: uuidV7(milliseconds: UInt64(max(0, Date().timeIntervalSince1970 * 1000)), using: &generator))
    }

    static func uuidV7(milliseconds: UInt64, using generator: inout some RandomNumberGenerator) -> String {
        let random = (generator.next() as UInt64, generator.next() as UInt64)
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(index))) }
        for index in 6..<8 { bytes[index] = UInt8(truncatingIfNeeded: random.0 >> (8 * UInt64(index))) }
        for index in 8..<16 { bytes[index] = UInt8(truncatingIfNeeded: random.1 >> (8 * UInt64(index - 8))) }
        bytes[6] = 0x70 | (bytes[6] & 0x0F)  // version 7
        bytes[8] = 0x80 | (bytes[8] & 0x3F)  // RFC 9562 variant
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public var description: String { rawValue }
}

extension SessionID: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(validating: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension SessionID: Comparable {
    public static func < (lhs: SessionID, rhs: SessionID) -> Bool { lhs.rawValue < rhs.rawValue }
}
