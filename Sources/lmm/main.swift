#if canImport(Glibc)
import Glibc
#endif
import LMMCommandLine

#if canImport(Glibc)
/// glibc's `mallopt` (malloc.h is not part of the Glibc module).
@_silgen_name("mallopt") func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
/// malloc.h's `M_ARENA_MAX`.
let M_ARENA_MAX: Int32 = -8

// Under an address-space limit (ulimit -v), each thread's malloc arena reserves 64 MB of address
// space (128 MB while it is made), which can take what the fit's memory checks counted on and
// fail an allocation of another thread at random: keep to one arena then (issue 11, item 12).
var addressLimit = rlimit()
if getrlimit(Int32(RLIMIT_AS.rawValue), &addressLimit) == 0, addressLimit.rlim_cur != rlim_t.max {
    _ = mallopt(M_ARENA_MAX, 1)
}
#endif
LMMCommand.main()
