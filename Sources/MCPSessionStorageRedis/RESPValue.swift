import CHiredis
import NIOCore

/// One reply from Redis (RESP2), as hiredis's reader parsed it.
enum RESPValue: Sendable, Hashable {
    /// A status reply (`+OK`).
    case status(String)
    /// An error reply (`-ERR …`), with its text.
    case error(String)
    case integer(Int64)
    /// A bulk string; `nil` is Redis's nil (a missing key, an empty result).
    case bulk([UInt8]?)
    /// A multi-bulk reply; `nil` is a nil array.
    case array([RESPValue]?)

    /// Converts a reply hiredis parsed (it stays owned by the caller).
    init(_ reply: UnsafePointer<redisReply>) {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS: self = .status(Self.text(value))
        case REDIS_REPLY_ERROR: self = .error(Self.text(value))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(value.integer))
        case REDIS_REPLY_STRING:
            self = .bulk(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: value.len).bindMemory(to: UInt8.self)) } ?? [])
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                guard let element = value.element[index] else {
                    elements.append(.bulk(nil))
                    continue
                }
                elements.append(RESPValue(element))
            }
            self = .array(elements)
        default:
            // REDIS_REPLY_NIL: a nil bulk or a nil array; RESP2 does not tell them apart here.
            self = .bulk(nil)
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let str = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: reply.len), as: UTF8.self)
    }

    /// The reply as text: a bulk string or a status.
    var string: String? {
        switch self {
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    /// The reply as an integer: an integer reply, or a bulk string holding one.
    var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes?): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The elements of an array reply.
    var elements: [RESPValue]? {
        if case .array(let elements?) = self { return elements }
        return nil
    }

    /// Whether this is Redis's nil.
    var isNil: Bool {
        switch self {
        case .bulk(nil), .array(nil): true
        default: false
        }
    }
}

/// A command's arguments, encoded by hiredis (`redisFormatCommandArgv`) as one RESP request.
enum RESPRequest {
    /// `args` in RESP (`*<n>\r\n$<len>\r\n<arg>\r\n…`), appended to `buffer`.
    static func encode(_ args: [String], into buffer: inout ByteBuffer) {
        // Every argument's bytes in one array, so hiredis gets stable pointers into it.
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(args.count)
        lengths.reserveCapacity(args.count)
        for arg in args {
            offsets.append(bytes.count)
            lengths.append(arg.utf8.count)
            bytes.append(contentsOf: arg.utf8)
        }
        bytes.append(0)  // a valid address for an empty last argument
        var command: UnsafeMutablePointer<CChar>?
        let length = bytes.withUnsafeBufferPointer { base in
            base.baseAddress!.withMemoryRebound(to: CChar.self, capacity: base.count) { start in
                var pointers = offsets.map { Optional(UnsafePointer(start + $0)) }
                return pointers.withUnsafeMutableBufferPointer { pointers in
                    redisFormatCommandArgv(&command, Int32(args.count), pointers.baseAddress, lengths)
                }
            }
        }
        guard let command, length > 0 else { return }
        defer { redisFreeCommand(command) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: command, count: Int(length)))
    }
}
