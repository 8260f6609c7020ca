@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// The statements on leases: each swap is one statement whose WHERE clause is the comparison,
// so of concurrent swaps from the same lease at most one changes the row.

struct SelectLease: PostgresPreparedStatement {
    static let name = "mcp_select_lease"
    static let sql = "SELECT holder, generation FROM mcp_session_leases WHERE session_id = $1 AND name = $2"
    static let bindingDataTypes: [PostgresDataType] = [.text, .text]
    typealias Row = Lease
    let id: SessionID
    let lease: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(id.rawValue)
        bindings.append(lease)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Lease {
        let (holder, generation) = try row.decode((String, Int64).self)
        return Lease(holder: holder, generation: generation)
    }
}

/// Takes a lease nobody holds. A missing session fails the foreign key.
struct TakeLease: PostgresPreparedStatement {
    static let name = "mcp_take_lease"
    static let sql = """
        INSERT INTO mcp_session_leases (session_id, name, holder, generation) VALUES ($1, $2, $3, $4) \
        ON CONFLICT (session_id, name) DO NOTHING RETURNING 1
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .int8]
    typealias Row = Int32
    let id: SessionID
    let lease: String
    let new: Lease

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(id.rawValue)
        bindings.append(lease)
        bindings.append(new.holder)
        bindings.append(new.generation)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 { try row.decode(Int32.self) }
}

/// Replaces a held lease if it is still the expected one.
struct ReplaceLease: PostgresPreparedStatement {
    static let name = "mcp_replace_lease"
    static let sql = """
        UPDATE mcp_session_leases SET holder = $5, generation = $6 \
        WHERE session_id = $1 AND name = $2 AND holder = $3 AND generation = $4 RETURNING 1
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .int8, .text, .int8]
    typealias Row = Int32
    let id: SessionID
    let lease: String
    let expected: Lease
    let new: Lease

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(id.rawValue)
        bindings.append(lease)
        bindings.append(expected.holder)
        bindings.append(expected.generation)
        bindings.append(new.holder)
        bindings.append(new.generation)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 { try row.decode(Int32.self) }
}

/// Releases a held lease if it is still the expected one.
struct ReleaseLease: PostgresPreparedStatement {
    static let name = "mcp_release_lease"
    static let sql = "DELETE FROM mcp_session_leases WHERE session_id = $1 AND name = $2 AND holder = $3 AND generation = $4 RETURNING 1"
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .int8]
    typealias Row = Int32
    let id: SessionID
    let lease: String
    let expected: Lease

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(id.rawValue)
        bindings.append(lease)
        bindings.append(expected.holder)
        bindings.append(expected.generation)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 { try row.decode(Int32.self) }
}
