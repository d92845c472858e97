#if canImport(Glibc)
import Glibc
#endif

/// The process's malloc settings, made once at start by `lmm` and `lmm-mpi`.
public enum Allocator {
    #if canImport(Glibc)
    /// glibc's `mallopt` (malloc.h is not part of the Glibc module).
    @_silgen_name("mallopt") private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
    /// malloc.h's `M_MMAP_THRESHOLD` and `M_ARENA_MAX`.
    private static let mmapThreshold: Int32 = -3
    private static let arenaMax: Int32 = -8
    #endif

    /// - Every allocation of 1 MB or more is mapped on its own and returned to the system when
    ///   freed. glibc's default threshold rises with each large block freed (up to 32 MB), after
    ///   which the fits' vectors of a few MB to 32 MB (one per random effect: 17 MB at 2.1M)
    ///   come from the heap, which keeps them after they are freed: the 10M-row slope model's
    ///   iterative fit grew by 250 MB over its Newton steps and peaked at 1,950,500 kB; with the
    ///   fixed threshold its resident memory stays flat after the first step (peak 1,886,872 kB).
    /// - Under an address-space limit (ulimit -v), each thread's malloc arena reserves 64 MB of
    ///   address space (128 MB while it is made), which can take what the fit's memory checks
    ///   counted on and fail an allocation of another thread at random: keep to one arena then
    ///   (issue 11, item 12).
    public static func configure() {
        #if canImport(Glibc)
        _ = mallopt(mmapThreshold, 1 << 20)
        var addressLimit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &addressLimit) == 0, addressLimit.rlim_cur != rlim_t.max {
            _ = mallopt(arenaMax, 1)
        }
        #endif
    }
}
