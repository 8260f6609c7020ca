@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// How a write sends its change when the storage was built with a `ChangeEmitter`: inside its
// own statement when the emitter says so (the NOTIFY then commits with the write), otherwise
// queued once the write committed, for the bus to send.

extension PostgresSessionStorage {
    /// Runs a single-row write whose message is `template` with the row's number (a version, an
    /// event id) spliced in: inside the statement when the emitter claims the write (then with
    /// the queued changes the claim carries), or queued as `change` once the write committed.
    func write<S: AnnouncedWrite>(
        _ statement: S, of id: SessionID, message template: ChangeMessageText.Template, change: (S.Row) -> SessionChange
    ) async throws -> S.Row? {
        guard let emitter = changeEmitter else { return try await first(statement) }
        guard let claim = emitter.claim(carrying: true) else {
            return try await emitter.deferring(
                { try await first(statement) }, changed: { $0.map { [change($0)] } ?? [] }, uncertain: [.mayHaveChanged(id)])
        }
        do {
            let announced = Announcing(base: statement, channel: emitter.channel, prefix: claim.lines + template.prefix, suffix: template.suffix)
            let row = try await first(announced)
            // No row written, no NOTIFY sent: what the claim carried goes back.
            if row == nil { emitter.unclaim(claim) }
            return row
        } catch {
            emitter.unclaim(claim)
            throw error
        }
    }

    /// Runs a write that cannot carry queued changes (a batch, a delete, an expiry pass): with
    /// its NOTIFY inside when the emitter claims it (`write` gets the emitter), otherwise without
    /// (`write` gets `nil`), queueing the changes it made (`changed`), or might have made if it
    /// failed (`uncertain`), for the bus to send.
    func announcing<T, Failure: Error>(
        changed: (T) -> [SessionChange], uncertain: @autoclosure () -> [SessionChange],
        _ write: (ChangeEmitter?) async throws(Failure) -> T
    ) async throws(Failure) -> T {
        guard let emitter = changeEmitter else { return try await write(nil) }
        if emitter.claim(carrying: false) != nil { return try await write(emitter) }
        return try await emitter.deferring({ () async throws(Failure) -> T in try await write(nil) }, changed: changed, uncertain: uncertain())
    }

    /// Runs a batch statement, with its rows' NOTIFYs inside when the emitter claims it (each
    /// message `prefix`, the row's number, then the row's own suffix), or its rows' changes
    /// queued once it committed.
    func batch<S: BatchWrite>(
        _ statement: S, of ids: [SessionID], prefix: String, change: (SessionID, Int64) -> SessionChange?
    ) async throws -> [SessionID: Int64] {
        let rows = try await announcing(changed: { $0.compactMap(change) }, uncertain: ids.map(SessionChange.mayHaveChanged)) {
            [self] (emitter: ChangeEmitter?) async throws -> [(SessionID, Int64)] in
            guard let emitter else { return try await all(statement) }
            return try await all(AnnouncingBatch(base: statement, channel: emitter.channel, prefix: prefix))
        }
        return Dictionary(rows, uniquingKeysWith: { first, _ in first })
    }

    /// Runs a write whose message is whole before it runs (`message`), inside the statement when
    /// `emitter` is given.
    func run<S: AnnouncedWrite>(_ statement: S, announcing message: String, through emitter: ChangeEmitter?) async throws -> [S.Row] {
        guard let emitter else { return try await all(statement) }
        return try await all(Announcing(base: statement, channel: emitter.channel, prefix: message, suffix: ""))
    }
}
