/// A change as it travels: who made it, how it was sent, and what it means.
public struct ChangeMessage: Sendable, Hashable {
    /// How a message was sent, which tells a receiver how to detect a lost one.
    public enum Delivery: Sendable, Hashable {
        /// Inside the write's own transaction or script (a NOTIFY in the write's statement, a
        /// PUBLISH in its Lua script): sent if and only if the write happened, in commit order.
        /// While the bus is connected none is lost, so there is nothing to number.
        case transactional
        /// After the write, numbered 1, 2, 3… per origin: a hole in the numbers means messages
        /// were lost.
        case sequenced(UInt64)
    }

    /// The instance that made the change (its ``ChangeBus/instanceID``).
    public var origin: String
    /// How it was sent.
    public var delivery: Delivery
    /// What it means.
    public var change: SessionChange

    public init(origin: String, delivery: Delivery, change: SessionChange) {
        self.origin = origin
        self.delivery = delivery
        self.change = change
    }
}

/// What a bus reports to its subscribers.
public enum BusSignal: Sendable, Hashable {
    /// The bus is (again) listening. Anything cached before this may have missed messages.
    case connected
    /// The bus lost its connection; messages may be lost until `connected`.
    case disconnected
    /// A change, from another instance or (for buses that echo) from this one.
    case message(ChangeMessage)
}
