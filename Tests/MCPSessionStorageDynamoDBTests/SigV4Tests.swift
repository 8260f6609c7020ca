import Foundation
import Testing

@testable import MCPSessionStorageDynamoDB

@Suite("SigV4")
struct SigV4Tests {
    static let suite = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let s3Docs = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @Test("AWS's test suite: get-vanilla, at every stage")
    func getVanilla() {
        let signer = SigV4Signer(service: "service", region: "us-east-1")
        let signed = signer.sign(
            method: "GET", path: "/", headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.hexSHA256(Data()), amzDate: "20150830T123600Z", credentials: Self.suite)
        #expect(signed.canonicalRequest == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(Self.emptyHash)")
        #expect(
            signed.stringToSign
                == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        )
        #expect(
            signed.authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
                + "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test("AWS's test suite: get-vanilla-query-order-key-case (query sorted)")
    func queryOrder() {
        let signer = SigV4Signer(service: "service", region: "us-east-1")
        let signed = signer.sign(
            method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")], payloadHash: Self.emptyHash,
            amzDate: "20150830T123600Z", credentials: Self.suite)
        #expect(signed.canonicalRequest.contains("\nParam1=value1&Param2=value2\n"))
        #expect(signed.signature == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    @Test("AWS's S3 signing examples: GET with a range, PUT with a body, a listing with a query")
    func s3Examples() {
        let signer = SigV4Signer(service: "s3", region: "us-east-1")
        let get = signer.sign(
            method: "GET", path: "/test.txt",
            headers: [
                ("host", "examplebucket.s3.amazonaws.com"), ("range", "bytes=0-9"), ("x-amz-content-sha256", Self.emptyHash),
                ("x-amz-date", "20130524T000000Z"),
            ], payloadHash: Self.emptyHash, amzDate: "20130524T000000Z", credentials: Self.s3Docs)
        #expect(
            get.stringToSign
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        )
        #expect(get.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")

        let bodyHash = SigV4Signer.hexSHA256(Data("Welcome to Amazon S3.".utf8))
        #expect(bodyHash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let put = signer.sign(
            method: "PUT", path: "/test%24file.text",
            headers: [
                ("date", "Fri, 24 May 2013 00:00:00 GMT"), ("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", bodyHash),
                ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ], payloadHash: bodyHash, amzDate: "20130524T000000Z", credentials: Self.s3Docs)
        #expect(put.signedHeaders == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class")
        #expect(put.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")

        let list = signer.sign(
            method: "GET", path: "/", query: [("max-keys", "2"), ("prefix", "J")],
            headers: [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", Self.emptyHash), ("x-amz-date", "20130524T000000Z")],
            payloadHash: Self.emptyHash, amzDate: "20130524T000000Z", credentials: Self.s3Docs)
        #expect(list.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    struct Fixture: Decodable {
        var url, region, target, body, accessKeyID, secretAccessKey, amzDate, canonicalRequest, stringToSign, authorization: String
        var sessionToken: String?
    }

    struct Fixtures: Decodable {
        var botocore: String
        var cases: [Fixture]
    }

    static func fixtures() throws -> [Fixture] {
        let path = DynamoDBTestEnvironment.root.appendingPathComponent("Tests/DynamoDBHelpers/sigv4-botocore.json")
        return try JSONDecoder().decode(Fixtures.self, from: try Data(contentsOf: path)).cases
    }

    @Test("the client signs DynamoDB requests exactly as botocore does (make_sigv4_fixtures.py)")
    func botocore() async throws {
        let cases = try Self.fixtures()
        #expect(cases.count >= 5)
        for fixture in cases {
            let credentials = AWSCredentials(
                accessKeyID: fixture.accessKeyID, secretAccessKey: fixture.secretAccessKey, sessionToken: fixture.sessionToken)
            let client = try DynamoDBClient(
                endpoint: fixture.url, region: fixture.region,
                credentials: CredentialsProvider(source: .fixed(credentials), http: DynamoDBClient.sharedHTTPClient), retry: .init())
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
            let date = try #require(formatter.date(from: fixture.amzDate))
            #expect(SigV4Signer.amzDate(date) == fixture.amzDate)
            let operation = String(fixture.target.dropFirst("DynamoDB_20120810.".count))
            let headers = client.signedHeaders(operation, Data(fixture.body.utf8), credentials: credentials, at: date)
            #expect(headers.first(name: "authorization") == fixture.authorization, "\(fixture.url) \(operation)")
            #expect(headers.first(name: "x-amz-date") == fixture.amzDate)
            #expect(headers.first(name: "x-amz-security-token") == fixture.sessionToken)

            // The stages too, from the canonical request's own header lines.
            let lines = fixture.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)
            let headerLines = lines[3..<(lines.count - 3)].map { line -> (String, String) in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), String(line[line.index(after: colon)...]))
            }
            let signed = SigV4Signer(service: "dynamodb", region: fixture.region).sign(
                method: "POST", path: "/", headers: headerLines, payloadHash: SigV4Signer.hexSHA256(Data(fixture.body.utf8)),
                amzDate: fixture.amzDate, credentials: credentials)
            #expect(signed.canonicalRequest == fixture.canonicalRequest)
            #expect(signed.stringToSign == fixture.stringToSign)
        }
    }
}
