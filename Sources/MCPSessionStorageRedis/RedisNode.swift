import Synchronization

/// The connections to one Redis server: a few pipelined connections, used in turn, each opened
/// when first needed and again after it fails.
final class RedisNode: Sendable {
    let address: RedisAddress
    private let password: String?
    private let database: Int
    private let connectTimeout: Duration
    private let operationTimeout: Duration
    private let slots: [SlotBox]
    private let next = Atomic<Int>(0)

    private enum Slot {
        case idle
        case connecting(Task<RedisConnection, any Error>)
        case ready(RedisConnection)
    }

    /// One connection's state (a class: `Mutex` cannot be copied into an array).
    private final class SlotBox: Sendable {
        let state = Mutex(Slot.idle)
    }

    init(address: RedisAddress, password: String?, database: Int, connections: Int, connectTimeout: Duration, operationTimeout: Duration) {
        self.address = address
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
        self.slots = (0..<max(1, connections)).map { _ in SlotBox() }
    }

    private enum Found {
        case connection(RedisConnection)
        case opening(Task<RedisConnection, any Error>)
    }

    /// A live connection, opening one if needed; concurrent callers share one attempt.
    func connection() async throws -> RedisConnection {
        let slot = slots[next.add(1, ordering: .relaxed).newValue % slots.count]
        let found = slot.state.withLock { state -> Found in
            switch state {
            case .ready(let connection) where connection.isActive:
                return .connection(connection)
            case .connecting(let task):
                return .opening(task)
            case .idle, .ready:
                let task = Task { [address, password, database, connectTimeout, operationTimeout] in
                    try await RedisConnection.connect(
                        to: address, password: password, database: database, connectTimeout: connectTimeout, silenceLimit: operationTimeout)
                }
                state = .connecting(task)
                return .opening(task)
            }
        }
        let task: Task<RedisConnection, any Error>
        switch found {
        case .connection(let connection): return connection
        case .opening(let opening): task = opening
        }
        do {
            let connection = try await task.value
            slot.state.withLock { if case .connecting = $0 { $0 = .ready(connection) } }
            return connection
        } catch {
            slot.state.withLock { if case .connecting = $0 { $0 = .idle } }
            throw error
        }
    }

    /// Sends one command on one of the connections.
    func send(_ args: [String]) async throws -> RESPValue {
        try await connection().send(args)
    }

    /// Closes every connection.
    func close() {
        for slot in slots {
            slot.state.withLock { state in
                if case .ready(let connection) = state { connection.close() }
                if case .connecting(let task) = state { task.cancel() }
                state = .idle
            }
        }
    }
}
