import MCPSessionStorage

/// What a stream follower knows about the call that writes its stream, to tell a running call
/// from one whose instance stopped: the call's lease as last read, and since when nothing moved
/// (no new event, no renewal).
struct OrphanWatch {
    let lease: CallLease
    private var seen: Lease?
    private var still: ContinuousClock.Instant = .now
    private var lastCheck: ContinuousClock.Instant = .now

    init(lease: CallLease) {
        self.lease = lease
    }

    /// The call sent something: it is alive.
    mutating func progressed() {
        still = .now
    }

    /// Whether it is time to read the lease again (every renewal interval).
    var isCheckDue: Bool { ContinuousClock.now - lastCheck >= lease.renewal }

    /// Records the lease as read now. Returns whether the call is orphaned: nothing moved for
    /// the timeout, and the lease (if any) is not an end someone already recorded.
    mutating func observe(_ current: Lease?) -> Bool {
        lastCheck = .now
        if current != seen {
            seen = current
            still = .now
            return false
        }
        if let current, current.holder.hasPrefix("ended:") { return false }
        return ContinuousClock.now - still >= lease.timeout
    }

    /// The lease to swap from when claiming the call, and the one to swap to.
    func claim(by instanceID: String) -> (expected: Lease?, new: Lease) {
        (seen, Lease(holder: CallLease.endedHolder(by: instanceID), generation: (seen?.generation ?? 0) + 1))
    }
}
