import Crypto
import Foundation

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for one service in one region.
///
/// Signs a request's method, path, query, headers and payload hash into the `Authorization`
/// header, as <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>
/// describes: two SHA-256 digests and five HMACs per request.
public struct SigV4Signer: Sendable {
    /// The service's signing name (`dynamodb`).
    public let service: String
    /// The region (`us-east-1`).
    public let region: String

    /// - Parameters:
    ///   - service: The service's signing name, such as `dynamodb`.
    ///   - region: The region, such as `eu-west-1`.
    public init(service: String, region: String) {
        self.service = service
        self.region = region
    }

    /// What signing produced: the stages, so tests can compare each with published vectors.
    public struct Signature: Sendable, Hashable {
        /// The canonical request.
        public var canonicalRequest: String
        /// The string to sign.
        public var stringToSign: String
        /// The signature, 64 lowercase hex digits.
        public var signature: String
        /// The signed header names, `;`-separated.
        public var signedHeaders: String
        /// The whole `Authorization` header value.
        public var authorization: String
    }

    /// Signs a request.
    /// - Parameters:
    ///   - method: The HTTP method, such as `POST`.
    ///   - path: The path as sent (already percent-encoded where needed), such as `/`.
    ///   - query: The query parameters, unencoded; they are encoded and sorted here.
    ///   - headers: Every header to sign (at least `host` and `x-amz-date`), names in any case.
    ///   - payloadHash: The payload's SHA-256 as lowercase hex (see ``hexSHA256(_:)``).
    ///   - amzDate: The request time as `YYYYMMDD'T'HHMMSS'Z'`, the same as the `x-amz-date` header.
    ///   - credentials: Who signs.
    /// - Returns: The signature and the stages that led to it.
    public func sign(
        method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String, amzDate: String,
        credentials: AWSCredentials
    ) -> Signature {
        // Header names lowercased and sorted; values trimmed, inner runs of spaces collapsed,
        // repeated names joined with commas in the order given.
        var merged: [String: [String]] = [:]
        for (name, value) in headers { merged[name.lowercased(), default: []].append(Self.trimmed(value)) }
        let names = merged.keys.sorted()
        var canonicalHeaders = ""
        for name in names { canonicalHeaders += name + ":" + merged[name]!.joined(separator: ",") + "\n" }
        let signedHeaders = names.joined(separator: ";")
        let canonicalQuery = query.map { (Self.encode($0.0), Self.encode($0.1)) }.sorted { $0 < $1 }.map { $0.0 + "=" + $0.1 }
            .joined(separator: "&")
        let canonicalRequest = [method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Self.hexSHA256(Array(canonicalRequest.utf8)))"
        let key = signingKey(secret: credentials.secretAccessKey, day: day)
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        return Signature(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature, signedHeaders: signedHeaders,
            authorization: "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)")
    }

    /// The signing key of a secret on a day: HMAC chained over the day, region, service and
    /// `aws4_request`.
    func signingKey(secret: String, day: String) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
        }
        let dated = hmac(SymmetricKey(data: Array(("AWS4" + secret).utf8)), day)
        return hmac(hmac(hmac(dated, region), service), "aws4_request")
    }

    /// The SHA-256 of `bytes` as lowercase hex: a request's payload hash.
    public static func hexSHA256(_ bytes: some DataProtocol) -> String { hex(SHA256.hash(data: bytes)) }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A header value trimmed, with each run of spaces inside it collapsed to one.
    static func trimmed(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// URI-encodes everything but the unreserved characters (`A-Z a-z 0-9 - _ . ~`).
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// A time as `x-amz-date` spells it: `YYYYMMDD'T'HHMMSS'Z'`, in UTC.
    public static func amzDate(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec))
    }
}
