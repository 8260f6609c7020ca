import Foundation
@_spi(Backend) import MCPSessionStorage
import Testing

@Suite("JSON text kept as stored")
struct JSONTextTests {
    func validates(_ bytes: [UInt8]) -> Bool { (try? JSONText(validating: bytes)) != nil }
    func decodes(_ bytes: [UInt8]) -> Bool { (try? JSONValue.decode(Data(bytes))) != nil }

    @Test(
        "checking refuses what decoding refuses",
        arguments: [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{'a':1}", "[1 2]", "01", "1.", ".5", "1e", "+1", "--1",
            "NaN", "Infinity", "tru", "nul", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"a\nb\"", "[1]x", "1e999",
            "{\"a\" 1}", "{1:2}", "[\"\\ud800\\u0041\"]", "-", "\"unterminated",
        ])
    func malformed(_ text: String) {
        #expect { try JSONText(validating: Array(text.utf8)) } throws: { ($0 as? SessionStorageError)?.code == .invalidInput }
    }

    @Test("checking refuses invalid UTF-8 and excessive nesting, as decoding does")
    func limits() {
        #expect(!validates([0x22, 0xC3, 0x28, 0x22]))
        #expect(!validates([0x22, 0x61, 0xC3, 0x5C, 0x6E, 0x22]))  // a UTF-8 lead byte cut by an escape
        #expect(!validates(Array((String(repeating: "[", count: 600) + String(repeating: "]", count: 600)).utf8)))
        #expect(validates(Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8)))
        #expect(validates(Array(#" { "k" : [ 1 , -2.5e3 , true , null , "é\n\u00e9\ud83c\udf89" , 9223372036854775808 ] } "#.utf8)))
    }

    @Test("checking and decoding agree on every mutation of valid text")
    func agreesWithDecoding() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]",:\/-+.eE0123456789 tfnuabrlsx"#.utf8) + [0x0A, 0x00, 0xC3, 0xA9, 0xFF, 0xED, 0xA0, 0x80]
        var refused = 0
        for _ in 0..<2000 {
            var bytes = Array(#"{"a":[1,-2.5e3,true,null,"é\n\u00e9\ud83c\udf89"],"b":{"c":"d"},"n":9223372036854775807}"#.utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = alphabet.randomElement(using: &generator)!
                case 1: bytes.remove(at: index)
                default: bytes.insert(alphabet.randomElement(using: &generator)!, at: index)
                }
            }
            #expect(validates(bytes) == decodes(bytes), "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
            if !decodes(bytes) { refused += 1 }
        }
        // The mutations reach both sides: most break the text, some keep it valid.
        #expect(refused > 500 && refused < 2000)
    }

    @Test("a value's text reads back as the value, and equal values make equal texts")
    func roundTrip() throws {
        let value: JSONValue = ["b": [1, 2.5, "é"], "a": nil]
        let text = try JSONText(value)
        #expect(text.string == #"{"a":null,"b":[1,2.5,"é"]}"#)
        #expect(text.value == value)
        #expect(try JSONText(validating: text.bytes) == text)
        #expect(try JSONText(["a": nil, "b": [1, 2.5, "é"]]) == text)
        #expect(throws: SessionStorageError.self) { try JSONText(.double(.infinity)) }
    }

    @Test("an event holding stored text equals, hashes and encodes as the same event holding the value")
    func eventForms() throws {
        let value: JSONValue = ["jsonrpc": "2.0", "id": 7, "result": ["ok": true]]
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let decoded = SSEEvent(id: 3, stream: .standalone, timestamp: date, type: "message", data: value, retryMilliseconds: 10)
        // Stored with spaces: equal as values though not as bytes.
        let spaced = try JSONText(validating: Array(#"{ "id": 7, "jsonrpc": "2.0", "result": { "ok": true } }"#.utf8))
        for text in [try JSONText(value), spaced] {
            let stored = SSEEvent(id: 3, stream: .standalone, timestamp: date, type: "message", encodedData: text, retryMilliseconds: 10)
            #expect(stored.data == value)
            #expect(stored == decoded && decoded == stored)
            #expect(stored.hashValue == decoded.hashValue)
            #expect(try stored.encodedData() == text)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            #expect(try encoder.encode(stored) == encoder.encode(decoded))
            #expect(try JSONDecoder().decode(SSEEvent.self, from: encoder.encode(stored)) == decoded)
        }
        var changed = decoded
        changed.data = ["other": 1]
        #expect(changed != decoded)
        #expect(try changed.encodedData()?.string == #"{"other":1}"#)
        var priming = decoded
        priming.data = nil
        #expect(try priming.encodedData() == nil)
    }

    @Test("an appended event carries the stored text and reads back equal")
    func appended() async throws {
        let storage = InMemorySessionStorage()
        let session = try await storage.createSession()
        let sent = try await storage.appendEvent(NewEvent(stream: .standalone, data: ["b": 1.0, "a": "x"]), to: session.id)
        #expect(try sent.encodedData()?.string == #"{"a":"x","b":1.0}"#)
        #expect(try await storage.event(sent.id, in: session.id) == sent)
    }
}
