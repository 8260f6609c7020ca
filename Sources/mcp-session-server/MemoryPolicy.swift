#if canImport(Glibc)
    import Glibc
#endif

/// How the process asks glibc's allocator to hand memory back.
///
/// glibc serves allocations of 128 KiB and more with their own `mmap`, returned to the system
/// on `free`, but after the first such block is freed it raises that threshold to the block's
/// size (up to 32 MiB): from then on request bodies (up to 4 MiB) and what parsing them builds
/// come from the heap arenas, which keep the pages once freed (measured: see the design notes).
/// A fixed threshold turns the dynamic adjustment off (`mallopt(3)`).
enum MemoryPolicy {
    /// `M_MMAP_THRESHOLD` in glibc's `<malloc.h>`, which Swift's Glibc module does not import.
    private static let mmapThreshold: Int32 = -3

    /// Fixes the mmap threshold at 128 KiB (glibc's initial value). Call once, before serving;
    /// without glibc, does nothing.
    static func apply() {
        #if canImport(Glibc)
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "mallopt") else { return }
            _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 128 << 10)
        #endif
    }
}
