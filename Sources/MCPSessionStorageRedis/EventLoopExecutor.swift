import NIOCore

/// Runs a task's jobs on one event loop. A task that prefers it (`Task(executorPreference:)`,
/// `withTaskExecutorPreference`) and sends commands over the storage's connection on that loop
/// (see `RedisNode`) never leaves the loop's thread: no hop to the loop and back per command.
/// The benchmarks and their SwiftNIO floors place their callers with it.
@_spi(Benchmark)
public final class EventLoopExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
