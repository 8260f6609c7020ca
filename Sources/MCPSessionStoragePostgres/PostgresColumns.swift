import Foundation
@_spi(Backend) import MCPSessionStorage
import PostgresNIO

// How the tables' columns turn into the contract's values and back.

/// A JSON column (json, jsonb or text), parsed straight from the wire buffer.
struct JSONColumn: PostgresDecodable {
    let value: JSONValue

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        if type == .jsonb && format == .binary {
            guard buffer.readInteger(as: UInt8.self) == 1 else { throw SessionStorageError.corrupted("unknown jsonb binary version") }
        }
        let view = buffer.readableBytesView
        let parsed =
            try view.withContiguousStorageIfAvailable { bytes in
                try JSONValue.decode(bytes: bytes)
            } ?? JSONValue.decode(Data(view))
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        value = type == .jsonb ? JSONBEscaping.restored(parsed, from: view) : parsed
    }
}

/// A JSON text column, checked but not decoded (an event's data).
struct JSONTextColumn: PostgresDecodable {
    let text: JSONText

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        // jsonb spells some strings its own way (see `JSONBEscaping`): decode and encode again.
        guard type != .jsonb else {
            text = try JSONText(try JSONColumn(from: &buffer, type: type, format: format, context: context).value)
            return
        }
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        do { text = try JSONText(validating: bytes) } catch {
            throw SessionStorageError.corrupted("stored event data is not JSON", underlying: error)
        }
    }
}

extension Optional where Wrapped == JSONValue {
    /// JSON text to bind, or NULL.
    func text() throws(SessionStorageError) -> String? {
        try map { (value) throws(SessionStorageError) in try JSONBEscaping.text(value) }
    }
}

/// The columns of a session row, in `SelectSession`'s order.
enum SessionColumns {
    static let list = """
        created_at, last_activity, is_initialized, protocol_version, client_info, client_capabilities, \
        server_capabilities, metadata, state, version
        """

    /// Decodes the session columns at the start of `row` (a batch row has the id after them).
    static func decode(_ row: PostgresRow, id: SessionID) throws -> SessionInfo {
        let values = row.makeRandomAccess()
        let context = PostgresDecodingContext.default
        func column<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws -> T { try values[index].decode(T.self, context: context) }
        let (createdAt, lastActivity, isInitialized, protocolVersion) =
            (try column(0, Date.self), try column(1, Date.self), try column(2, Bool.self), try column(3, String?.self))
        let (clientInfo, clientCapabilities, serverCapabilities) =
            (try column(4, JSONColumn?.self), try column(5, JSONColumn?.self), try column(6, JSONColumn?.self))
        let (metadata, state, version) = (try column(7, JSONColumn.self), try column(8, JSONColumn.self), try column(9, Int64.self))
        guard case .object(let metadataObject) = metadata.value, case .object(let stateObject) = state.value else {
            throw SessionStorageError.corrupted("metadata or state of \(id) is not a JSON object")
        }
        return SessionInfo(
            id: id, createdAt: createdAt, lastActivity: lastActivity, isInitialized: isInitialized,
            protocolVersion: protocolVersion, clientInfo: clientInfo?.value, clientCapabilities: clientCapabilities?.value,
            serverCapabilities: serverCapabilities?.value, metadata: metadataObject, state: stateObject, version: version)
    }

    /// A stored session id, checked against the contract.
    static func id(_ text: String) throws -> SessionID {
        do { return try SessionID(validating: text) } catch {
            throw SessionStorageError.corrupted("stored session id \(text.debugDescription) is malformed")
        }
    }

    /// A session id and a number (a version, an event id): what batch statements answer per row.
    static func idAndNumber(_ row: PostgresRow) throws -> (SessionID, Int64) {
        let (id, number) = try row.decode((String, Int64).self)
        return (try Self.id(id), number)
    }
}

/// A whole state dictionary, encoded for the `state`, `state_sizes` and `state_bytes` columns.
struct StateColumns {
    let values: String
    let sizes: String
    let total: Int

    init(_ state: [String: JSONValue], policy: SessionPolicy) throws(SessionStorageError) {
        let encoded = try policy.encodeState(state)
        self.values = try JSONBEscaping.text(.object(state))
        self.sizes = try JSONBEscaping.text(.object(encoded.sizes.mapValues { .int(Int64($0)) }))
        self.total = encoded.total
    }
}

/// The columns of an event row, in the replay statements' order.
enum EventColumns {
    static let list = "e.id, e.stream, e.created_at, e.type, e.data, e.retry_ms"

    static func decode(_ row: PostgresRow) throws -> SSEEvent {
        let (id, stream, createdAt, type, data, retry) = try row.decode((Int64, String, Date, String?, JSONTextColumn?, Int32?).self)
        let streamID: StreamID
        do { streamID = try StreamID(validating: stream) } catch { throw SessionStorageError.corrupted("stored stream id is malformed") }
        return SSEEvent(id: id, stream: streamID, timestamp: createdAt, type: type, encodedData: data?.text, retryMilliseconds: retry.map(Int.init))
    }
}
