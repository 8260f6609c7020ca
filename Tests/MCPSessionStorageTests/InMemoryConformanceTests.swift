import MCPSessionStorage
import MCPSessionStorageTesting
import Testing

@Suite("InMemorySessionStorage")
struct InMemoryConformanceTests {
    @Test("conformance", arguments: SessionStorageConformance.checks)
    func conformance(_ check: SessionStorageConformance.Check) async throws {
        try await check.run { policy in InMemorySessionStorage(configuration: .init(policy: policy)) }
    }

    @Test("the session cap is limitExceeded and frees up on delete")
    func sessionCap() async throws {
        let storage = InMemorySessionStorage(configuration: .init(maxSessions: 2))
        let first = try await storage.createSession()
        _ = try await storage.createSession()
        await #expect(throws: SessionStorageError.self) { try await storage.createSession() }
        do {
            _ = try await storage.createSession()
        } catch {
            #expect(error.code == .limitExceeded)
        }
        #expect(try await storage.deleteSession(first.id))
        _ = try await storage.createSession()
        #expect(try await storage.sessionCount() == 2)
    }
}
