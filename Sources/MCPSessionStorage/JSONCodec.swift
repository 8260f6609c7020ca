import Foundation

/// A strict RFC 8259 reader and a compact writer for ``JSONValue``, working on bytes.
///
/// Every state value and event payload crosses this code on every backend call, so it avoids
/// Foundation's `JSONSerialization`/`Codable` round trip (many allocations per value) and reads
/// exactly the grammar: no trailing commas, no comments, no NaN, valid UTF-8 only.
enum JSONCodec {
    /// Deeper nesting than this is refused rather than risking the stack.
    static let maxDepth = 512

    struct SyntaxError: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "\(reason) at byte \(offset)" }
    }

    // MARK: Writing

    static func write(_ value: JSONValue) throws(SessionStorageError) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(64)
        try write(value, into: &out)
        return Data(out)
    }

    static func write(_ value: JSONValue, into out: inout [UInt8]) throws(SessionStorageError) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: flag ? "true".utf8 : "false".utf8)
        case .int(let number): out.append(contentsOf: String(number).utf8)
        case .double(let number):
            guard number.isFinite else {
                throw SessionStorageError(.invalidInput, "JSON cannot hold the number \(number)")
            }
            // `description` is the shortest text that reads back as the same Double.
            out.append(contentsOf: number.description.utf8)
        case .string(let text): writeString(text, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            // Sorted keys: equal values always encode to equal bytes.
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                try write(members[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Reading

    static func read(_ data: Data) throws(SyntaxError) -> JSONValue {
        let result: Result<JSONValue, SyntaxError> = data.withUnsafeBytes { raw in
            Result { () throws(SyntaxError) -> JSONValue in try read(raw.bindMemory(to: UInt8.self)) }
        }
        return try result.get()
    }

    static func read(_ bytes: UnsafeBufferPointer<UInt8>) throws(SyntaxError) -> JSONValue {
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.position == reader.bytes.count else { throw reader.fail("unexpected text after the value") }
        return value
    }

    /// Checks that `bytes` hold one JSON value that ``read(_:)-(UnsafeBufferPointer<UInt8>)`` would
    /// accept, without building it: no strings, arrays or dictionaries are allocated.
    static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(SyntaxError) {
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        try reader.skipValue(depth: 0)
        reader.skipSpace()
        guard reader.position == reader.bytes.count else { throw reader.fail("unexpected text after the value") }
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        func fail(_ reason: String) -> SyntaxError { SyntaxError(offset: position, reason: reason) }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        mutating func expect(_ literal: StaticString) throws(SyntaxError) {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw fail("truncated literal") }
            for offset in 0..<count where bytes[position + offset] != literal.utf8Start[offset] {
                throw fail("invalid literal")
            }
            position += count
        }

        mutating func value(depth: Int) throws(SyntaxError) -> JSONValue {
            guard depth < JSONCodec.maxDepth else { throw fail("nesting deeper than \(JSONCodec.maxDepth)") }
            guard let byte = current else { throw fail("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw fail("unexpected character")
            }
        }

        mutating func object(depth: Int) throws(SyntaxError) -> JSONValue {
            position += 1
            var members: [String: JSONValue] = [:]
            skipSpace()
            if current == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipSpace()
                members[key] = try value(depth: depth + 1)
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"):
                    position += 1
                    return .object(members)
                default: throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(SyntaxError) -> JSONValue {
            position += 1
            var elements: [JSONValue] = []
            skipSpace()
            if current == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                skipSpace()
                elements.append(try value(depth: depth + 1))
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"):
                    position += 1
                    return .array(elements)
                default: throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func number() throws(SyntaxError) -> JSONValue {
            let start = position
            let isInteger = try scanNumber()
            if isInteger, let integer = integer(start..<position) { return .int(integer) }
            return .double(try double(start..<position))
        }

        /// Moves past a number's grammar; `true` when it has no fraction or exponent.
        mutating func scanNumber() throws(SyntaxError) -> Bool {
            var isInteger = true
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { throw fail("expected a digit") }
            position += 1
            if first != UInt8(ascii: "0") { skipDigits() }
            if current == UInt8(ascii: ".") {
                isInteger = false
                position += 1
                guard try digits() > 0 else { throw fail("expected digits after '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                isInteger = false
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard try digits() > 0 else { throw fail("expected exponent digits") }
            }
            return isInteger
        }

        /// The number in `range` as a finite Double.
        func double(_ range: Range<Int>) throws(SyntaxError) -> Double {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
            guard let double = Double(text), double.isFinite else { throw SyntaxError(offset: range.lowerBound, reason: "number out of range") }
            return double
        }

        /// The digits in `range` (an optional '-', then digits) as an Int64; `nil` on overflow.
        func integer(_ range: Range<Int>) -> Int64? {
            var index = range.lowerBound
            let negative = bytes[index] == UInt8(ascii: "-")
            if negative { index += 1 }
            var value: Int64 = 0
            while index < range.upperBound {
                let digit = Int64(bytes[index] &- UInt8(ascii: "0"))
                let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
                if overflow1 || overflow2 { return nil }
                value = next
                index += 1
            }
            return value
        }

        mutating func skipDigits() {
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
        }

        mutating func digits() throws(SyntaxError) -> Int {
            let start = position
            skipDigits()
            return position - start
        }

        mutating func string() throws(SyntaxError) -> String {
            position += 1
            let start = position
            // Fast path: no escapes, so the bytes between the quotes are the string.
            var ascii = true
            while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                guard byte >= 0x20 else { throw fail("control character in string") }
                ascii = ascii && byte < 0x80
                position += 1
            }
            guard let stop = current else { throw fail("unterminated string") }
            if stop == UInt8(ascii: "\"") {
                // ASCII needs no validation, and skips the generic (slower) validating initializer.
                let text =
                    ascii
                    ? String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                    : try utf8(start..<position)
                position += 1
                return text
            }
            var scratch = Array(bytes[start..<position])
            while true {
                guard let byte = current else { throw fail("unterminated string") }
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: scratch, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                    return text
                case UInt8(ascii: "\\"):
                    try escape(into: &scratch)
                case 0..<0x20:
                    throw fail("control character in string")
                default:
                    scratch.append(byte)
                }
            }
        }

        func utf8(_ range: Range<Int>) throws(SyntaxError) -> String {
            guard let text = String(validating: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) else {
                throw SyntaxError(offset: range.lowerBound, reason: "invalid UTF-8 in string")
            }
            return text
        }

        mutating func escape(into scratch: inout [UInt8]) throws(SyntaxError) {
            let scalar = try unescape()
            if scalar.isASCII {
                scratch.append(UInt8(scalar.value))
            } else {
                scratch.append(contentsOf: String(Character(scalar)).utf8)
            }
        }

        /// The character an escape (after its backslash) stands for.
        mutating func unescape() throws(SyntaxError) -> Unicode.Scalar {
            guard let byte = current else { throw fail("unterminated escape") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return Unicode.Scalar(byte)
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard current == UInt8(ascii: "\\") else { throw fail("lone surrogate") }
                    position += 1
                    guard current == UInt8(ascii: "u") else { throw fail("lone surrogate") }
                    position += 1
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                return unicode
            default:
                throw fail("invalid escape")
            }
        }

        // MARK: Validating without building

        mutating func skipValue(depth: Int) throws(SyntaxError) {
            guard depth < JSONCodec.maxDepth else { throw fail("nesting deeper than \(JSONCodec.maxDepth)") }
            guard let byte = current else { throw fail("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): try skipMembers(depth: depth, close: UInt8(ascii: "}"))
            case UInt8(ascii: "["): try skipMembers(depth: depth, close: UInt8(ascii: "]"))
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "t"): try expect("true")
            case UInt8(ascii: "f"): try expect("false")
            case UInt8(ascii: "n"): try expect("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = position
                // As `number()`: an integer past Int64 and any fraction must be a finite Double.
                if try !scanNumber() || integer(start..<position) == nil { _ = try double(start..<position) }
            default: throw fail("unexpected character")
            }
        }

        /// An object's members (`close` is `}`) or an array's elements (`]`).
        mutating func skipMembers(depth: Int, close: UInt8) throws(SyntaxError) {
            let isObject = close == UInt8(ascii: "}")
            position += 1
            skipSpace()
            if current == close {
                position += 1
                return
            }
            while true {
                skipSpace()
                if isObject {
                    guard current == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    try skipString()
                    skipSpace()
                    guard current == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    position += 1
                    skipSpace()
                }
                try skipValue(depth: depth + 1)
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case close:
                    position += 1
                    return
                default: throw fail(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
                }
            }
        }

        /// A string, escapes and UTF-8 checked as `string()` checks them. Escapes are ASCII and
        /// stand for whole scalars, so the raw bytes are valid UTF-8 exactly when the text is.
        mutating func skipString() throws(SyntaxError) {
            position += 1
            let start = position
            var ascii = true
            while true {
                guard let byte = current else { throw fail("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""):
                    if !ascii { try checkUTF8(start..<position) }
                    position += 1
                    return
                case UInt8(ascii: "\\"):
                    position += 1
                    _ = try unescape()
                case 0..<0x20:
                    throw fail("control character in string")
                default:
                    ascii = ascii && byte < 0x80
                    position += 1
                }
            }
        }

        func checkUTF8(_ range: Range<Int>) throws(SyntaxError) {
            var iterator = UnsafeBufferPointer(rebasing: bytes[range]).makeIterator()
            var decoder = Unicode.UTF8()
            while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: return
                case .error: throw SyntaxError(offset: range.lowerBound, reason: "invalid UTF-8 in string")
                }
            }
        }

        mutating func hex4() throws(SyntaxError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("invalid hex digit")
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }
    }
}
