import AsyncHTTPClient
import Foundation
import MCPSessionStorage

/// `Tests/DynamoDBHelpers/fault_proxy.py` running in front of a moto server: it answers its first
/// requests with the faults it is given, then forwards everything to moto. Started and asked
/// without blocking a thread of the cooperative pool.
final class FaultProxy: Sendable {
    let process: Process
    let port: Int

    /// Starts the proxy and waits (asleep) until it listens.
    static func start(upstream: String, faults: [String] = [], token: String? = nil, expiresIn: Int = 3600) async throws -> FaultProxy {
        let script = DynamoDBTestEnvironment.root.appendingPathComponent("Tests/DynamoDBHelpers/fault_proxy.py").path
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("fault-proxy-\(UUID().uuidString)").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments =
            [script, "--upstream", upstream, "--faults", faults.joined(separator: ","), "--expires-in", String(expiresIn), "--port-file", portFile]
            + (token.map { ["--token", $0] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) {
                try? FileManager.default.removeItem(atPath: portFile)
                return FaultProxy(process: process, port: port)
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        process.terminate()
        throw SessionStorageError(.unavailable, "the fault proxy did not start")
    }

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// What the proxy counted: `faulted`, `forwarded`, `credentials`.
    func stats() async throws -> [String: Int] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url + "/stats"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 16)
        return try JSONDecoder().decode([String: Int].self, from: Data(body.readableBytesView))
    }

    /// Stops the proxy (it also stops by itself when the test process ends).
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    deinit {
        stop()
    }
}
