import NIOCore
import NIOPosix
import Synchronization

/// The connections to one Redis server: a few pipelined connections, used in turn, each opened
/// when first needed and again after it fails.
///
/// Connection k lives on event loop k of NIO's shared group. A caller already running on one of
/// those loops (a task whose executor is the loop, or code called from a channel handler) uses
/// that loop's connection, so its commands and replies never leave its thread.
final class RedisNode: Sendable {
    let address: RedisAddress
    private let password: String?
    private let database: Int
    private let connectTimeout: Duration
    private let operationTimeout: Duration
    private let slots: [SlotBox]
    private let next = Atomic<Int>(0)
    /// The loop of each slot's connection.
    private let loops: [any EventLoop]

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
        let group = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        self.loops = slots.indices.map { group[$0 % group.count] }
    }

    /// The slot of the loop the caller runs on, if it runs on one of ours; else the next in turn.
    private func slotIndex() -> Int {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let index = loops.firstIndex(where: { $0 === current }) {
            return index
        }
        return next.add(1, ordering: .relaxed).newValue % slots.count
    }

    private enum Found {
        case connection(RedisConnection)
        case opening(Task<RedisConnection, any Error>)
    }

    /// A live connection, opening one if needed; concurrent callers share one attempt.
    func connection() async throws -> RedisConnection {
        let index = slotIndex()
        let slot = slots[index]
        let found = slot.state.withLock { state -> Found in
            switch state {
            case .ready(let connection) where connection.isActive:
                return .connection(connection)
            case .connecting(let task):
                return .opening(task)
            case .idle, .ready:
                let task = Task { [address, password, database, connectTimeout, operationTimeout, loop = loops[index]] in
                    try await RedisConnection.connect(
                        to: address, password: password, database: database, connectTimeout: connectTimeout, silenceLimit: operationTimeout,
                        on: loop)
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
