import Foundation
import MCPSessionStorage
import Testing

@Suite("JSON text")
struct JSONCodecTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.decode(Data(text.utf8)) }
    func text(_ value: JSONValue) throws -> String { String(decoding: try value.encoded(), as: UTF8.self) }

    @Test("escapes and unicode read as the characters they name")
    func escapes() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""\u00e9\u4e16\ud83c\udf89""#) == .string("é世🎉"))
        #expect(try parse(" { \"k\" : [ 1 , -2.5e3 , true , null ] } ") == ["k": [1, -2500.0, true, nil]])
    }

    @Test("numbers keep integers exact and doubles shortest")
    func numbers() throws {
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(try parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try parse("0.1") == .double(0.1))
        #expect(try text(.double(0.1)) == "0.1")
        #expect(try text(.double(1e-300)) == "1e-300")
        #expect(try text(.int(-7)) == "-7")
    }

    @Test("writing sorts keys and escapes control characters")
    func writing() throws {
        #expect(try text(["b": 1, "a": ["x": "\u{1}\n\"/"]]) == #"{"a":{"x":"\u0001\n\"/"},"b":1}"#)
    }

    @Test(
        "malformed text is invalidInput",
        arguments: [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{'a':1}", "[1 2]", "01", "1.", ".5", "1e", "+1", "--1",
            "NaN", "Infinity", "tru", "nul", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"a\nb\"", "[1]x", "1e999",
        ])
    func malformed(_ text: String) {
        #expect { try JSONValue.decode(Data(text.utf8)) } throws: { ($0 as? SessionStorageError)?.code == .invalidInput }
    }

    @Test("invalid UTF-8 and excessive nesting are refused")
    func limits() throws {
        #expect(throws: SessionStorageError.self) { try JSONValue.decode(Data([0x22, 0xC3, 0x28, 0x22])) }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: SessionStorageError.self) { try JSONValue.decode(Data(deep.utf8)) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONValue.decode(Data(fine.utf8)) }
    }

    @Test("random values round-trip and agree with Foundation's parser")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let value = randomValue(depth: 0, using: &generator)
            let data = try value.encoded()
            #expect(try JSONValue.decode(data) == value)
            let foundation = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            let again = try JSONSerialization.data(withJSONObject: foundation, options: [.fragmentsAllowed, .sortedKeys])
            #expect(try JSONValue.decode(again) == value)
        }
    }

    func randomValue(depth: Int, using generator: inout SystemRandomNumberGenerator) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int64.random(in: -1_000_000_000...1_000_000_000, using: &generator))
        case 3: return .double(Double.random(in: -1e6...1e6, using: &generator) + 0.5)
        case 4:
            let scalars = (0..<Int.random(in: 0..<12, using: &generator)).map { _ in
                ["a", "é", "\"", "\\", "\n", "\u{1}", "🎉", "/", " "].randomElement(using: &generator)!
            }
            return .string(scalars.joined())
        case 5: return .array((0..<Int.random(in: 0..<4, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var members: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0..<4, using: &generator) { members["k\(index)"] = randomValue(depth: depth + 1, using: &generator) }
            return .object(members)
        }
    }
}
