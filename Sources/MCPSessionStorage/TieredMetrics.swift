import Metrics

/// The tier's counters and timer, through swift-metrics.
struct TieredMetrics: Sendable {
    let hits: Counter
    let misses: Counter
    let evictions: Counter
    let invalidations: Counter
    let flushes: Counter
    let coalescedLoads: Counter
    let durableLatency: Metrics.Timer

    init(dimensions: [(String, String)]) {
        hits = Counter(label: "mcp_session_front_hits", dimensions: dimensions)
        misses = Counter(label: "mcp_session_front_misses", dimensions: dimensions)
        evictions = Counter(label: "mcp_session_front_evictions", dimensions: dimensions)
        invalidations = Counter(label: "mcp_session_front_invalidations", dimensions: dimensions)
        flushes = Counter(label: "mcp_session_front_flushes", dimensions: dimensions)
        coalescedLoads = Counter(label: "mcp_session_front_coalesced_loads", dimensions: dimensions)
        durableLatency = Metrics.Timer(label: "mcp_session_durable_latency", dimensions: dimensions)
    }
}

extension Metrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
