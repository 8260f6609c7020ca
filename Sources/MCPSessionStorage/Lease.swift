/// Who holds a named lease of a session, and how many times it was taken or renewed.
///
/// Leases are how instances agree on who runs something tied to a session (a tool call today,
/// a task later) without trusting each other's clocks: the holder renews by raising the
/// ``generation``; an observer that sees the same generation for longer than the lease's
/// timeout knows the holder is gone, and takes the lease over with one compare-and-swap
/// (``SessionStorage/swapLease(_:in:expected:new:)``) that only one contender can win.
public struct Lease: Sendable, Hashable {
    /// Who holds it: 1–256 bytes, no NUL (an instance id, or a tag such as `ended:<instance>`).
    public var holder: String
    /// Raised by each renewal, so a living holder can be told from a dead one.
    public var generation: Int64

    public init(holder: String, generation: Int64) {
        self.holder = holder
        self.generation = generation
    }

    /// The next renewal of this lease.
    public var renewed: Lease { Lease(holder: holder, generation: generation + 1) }
}

extension SessionPolicy {
    /// Checks a lease name and, if given, a lease: `invalidInput` for an empty name or holder,
    /// one over 512 (name) or 256 (holder) bytes, or one holding NUL.
    @_spi(Backend)
    public func checkLease(_ name: String, _ leases: Lease?...) throws(SessionStorageError) {
        guard !name.isEmpty, name.utf8.count <= 512, !name.utf8.contains(0) else {
            throw SessionStorageError(.invalidInput, "lease name must be 1–512 bytes without NUL")
        }
        for lease in leases.compactMap({ $0 }) {
            guard !lease.holder.isEmpty, lease.holder.utf8.count <= 256, !lease.holder.utf8.contains(0) else {
                throw SessionStorageError(.invalidInput, "lease holder must be 1–256 bytes without NUL")
            }
        }
    }
}
