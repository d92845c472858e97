import CLAPACK
import Foundation

/// The BLAS/LAPACK library the dense kernels call, chosen once per process.
///
/// Debian 12's OpenBLAS (0.3.21) does not know recent Intel processors and falls back to
/// its generic SSE3 kernels there (`Core: Prescott`). Measured on an Intel Xeon (family 6,
/// model 207) with one thread, n = 4000: dpotrf 4.9 GFlop/s (Debian's OpenBLAS, Prescott),
/// 10.0 GFlop/s (Debian's reference LAPACK over Debian's BLIS 0.9, 'haswell' kernels) and
/// 21.3 GFlop/s (OpenBLAS 0.3.34 from the `scipy-openblas32` wheel, SkylakeX kernels); dgemm
/// 4.8, 12.0 and 27.3 GFlop/s (machine loaded by other work: ratios, not peaks). So the engine
/// prefers a current OpenBLAS when one is installed (`.ci/run` puts NumPy/SciPy's build of it,
/// `libscipy_openblas.so`, in /usr/local/lib), and falls back to the system's BLAS otherwise.
/// OpenBLAS's core-type and L2-size environment variables are never set here: both libraries read them
/// when a machine sets them.
///
/// `LMM_BLAS` overrides the choice: `system` for the linked system BLAS/LAPACK, or a path to
/// a shared library exporting the Fortran symbols (`dgemm_`, or `scipy_dgemm_`).
package struct BLASLibrary: @unchecked Sendable {
    typealias Character = UnsafePointer<CChar>?
    typealias IntIn = UnsafePointer<Int32>?
    typealias DoubleIn = UnsafePointer<Double>?
    typealias DoubleInOut = UnsafeMutablePointer<Double>?
    typealias Potrf = @convention(c) (Character, IntIn, DoubleInOut, IntIn, UnsafeMutablePointer<Int32>?) -> Void
    typealias Trtri = @convention(c) (Character, Character, IntIn, DoubleInOut, IntIn, UnsafeMutablePointer<Int32>?) -> Void
    typealias Syrk = @convention(c) (Character, Character, IntIn, IntIn, DoubleIn, DoubleIn, IntIn,
                                     DoubleIn, DoubleInOut, IntIn) -> Void
    typealias Gemm = @convention(c) (Character, Character, IntIn, IntIn, IntIn, DoubleIn, DoubleIn, IntIn,
                                     DoubleIn, IntIn, DoubleIn, DoubleInOut, IntIn) -> Void
    typealias Symm = @convention(c) (Character, Character, IntIn, IntIn, DoubleIn, DoubleIn, IntIn,
                                     DoubleIn, IntIn, DoubleIn, DoubleInOut, IntIn) -> Void
    typealias Trsm = @convention(c) (Character, Character, Character, Character, IntIn, IntIn, DoubleIn,
                                     DoubleIn, IntIn, DoubleInOut, IntIn) -> Void
    typealias Trsv = @convention(c) (Character, Character, Character, IntIn, DoubleIn, IntIn,
                                     DoubleInOut, IntIn) -> Void
    typealias Gemv = @convention(c) (Character, IntIn, IntIn, DoubleIn, DoubleIn, IntIn, DoubleIn, IntIn,
                                     DoubleIn, DoubleInOut, IntIn) -> Void
    typealias SetThreads = @convention(c) (Int32) -> Void
    typealias Text = @convention(c) () -> UnsafeMutablePointer<CChar>?

    let dpotrf: Potrf
    let dpotri: Potrf
    let dtrtri: Trtri
    let dsyrk: Syrk
    let dgemm: Gemm
    let dsymm: Symm
    let dtrsm: Trsm
    let dtrmm: Trsm
    let dtrsv: Trsv
    let dgemv: Gemv
    /// `openblas_set_num_threads` of this library, when it is an OpenBLAS.
    let setThreads: SetThreads?
    /// Where the routines come from, e.g. `libscipy_openblas.so (OpenBLAS 0.3.34 …), core SkylakeX`.
    package let description: String

    /// The library of this process.
    package static let current: BLASLibrary = {
        let library = chosen()
        if PhaseLog.enabled {
            FileHandle.standardError.write(Data("[timing] dense kernels: \(library.description)\n".utf8))
        }
        return library
    }()

    private static func chosen() -> BLASLibrary {
        let choice = ProcessInfo.processInfo.environment["LMM_BLAS"]
        if choice == "system" { return system() }
        shortenIdleSpin()
        let candidates = choice.map { [$0] } ?? ["libscipy_openblas.so", "/usr/local/lib/libscipy_openblas.so"]
        for path in candidates {
            if let library = loaded(path) {
                stopSystemThreads(unlessItIs: library)
                return library
            }
        }
        if let choice {
            FileHandle.standardError.write(Data("lmm: LMM_BLAS=\(choice) could not be loaded; using the system BLAS\n".utf8))
        }
        return system()
    }

    /// The idle-spin bound of the OpenBLAS about to be loaded, unless the environment sets one.
    ///
    /// After each call OpenBLAS's worker threads spin (yielding) for 2^28 clock ticks, about
    /// 0.1 s, before they sleep; it reads the bound from `OPENBLAS_THREAD_TIMEOUT` (an exponent,
    /// 4–30) when it is loaded. On the 2-core machines the spinning thread takes a core from the
    /// Dispatch workers and halved the speed of the main thread's own work in between (lme4's
    /// InstEval, AMD EPYC Zen 5: the approximate start's 24 sweeps 35 ms against 18 ms). With
    /// 2^16 ticks (tens of microseconds), whole processes, medians, paired with the default:
    /// InstEval REML 0.290 → 0.237 s, InstEval-like ML 0.197 → 0.155 s, users × items 200k
    /// 0.735 → 0.671 s, ml-1m 2.00 → 1.89 s, the 1M users × items fit unchanged (23.4 s, ×1.01).
    /// Only the spin changes (a performance setting): a value the machine sets is kept, and
    /// the core type and cache size OpenBLAS detects are never touched.
    private static func shortenIdleSpin() {
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "16", 0)
    }

    /// Ends the worker threads of the system's OpenBLAS (which CHOLMOD links) when the dense
    /// kernels come from another library. Those threads start when the process loads and spin
    /// for about 0.1 s before they sleep, over the reading of the data and the start: on lme4's
    /// InstEval (AMD EPYC Zen 5) that thread took 16 % of the process's samples and halved the
    /// speed of the main thread's sweeps. OpenBLAS's own `blas_thread_shutdown_` (what its fork
    /// handler calls) ends them; the library starts them again at its next threaded call
    /// (CHOLMOD's supernodal factorization), and the blocked engine no longer sets its thread
    /// count (``Threading/setDenseKernelThreads(_:)``), which would start them too.
    private static func stopSystemThreads(unlessItIs library: BLASLibrary) {
        typealias Shutdown = @convention(c) () -> Int32
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "blas_thread_shutdown_") else { return }
        // The same library loaded twice (LMM_BLAS naming the system's file) shares its threads.
        if let ours = library.setThreads, let linked = dlsym(process, "openblas_set_num_threads"),
           unsafeBitCast(ours, to: UnsafeRawPointer.self) == UnsafeRawPointer(linked) { return }
        _ = unsafeBitCast(symbol, to: Shutdown.self)()
    }

    /// The BLAS/LAPACK the package links (Debian's `libblas.so.3`/`liblapack.so.3` alternatives).
    private static func system() -> BLASLibrary {
        let process = dlopen(nil, RTLD_NOW)
        let setThreads = dlsym(process, "openblas_set_num_threads").map { unsafeBitCast($0, to: SetThreads.self) }
        var description = "system BLAS/LAPACK (libblas.so.3, liblapack.so.3)"
        if let config = dlsym(process, "openblas_get_config").map({ unsafeBitCast($0, to: Text.self) }),
           let core = dlsym(process, "openblas_get_corename").map({ unsafeBitCast($0, to: Text.self) }) {
            description += ": \(string(config())), core \(string(core()))"
        }
        return BLASLibrary(dpotrf: dpotrf_, dpotri: dpotri_, dtrtri: dtrtri_, dsyrk: dsyrk_, dgemm: dgemm_, dsymm: dsymm_,
                           dtrsm: dtrsm_, dtrmm: dtrmm_, dtrsv: dtrsv_, dgemv: dgemv_, setThreads: setThreads, description: description)
    }

    /// The library at `path`, if it loads and exports every routine (plain or `scipy_` names).
    private static func loaded(_ path: String) -> BLASLibrary? {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else { return nil }
        let prefix = dlsym(handle, "scipy_dgemm_") != nil ? "scipy_" : ""
        func routine<T>(_ name: String, as type: T.Type) -> T? {
            dlsym(handle, prefix + name).map { unsafeBitCast($0, to: type) }
        }
        guard let potrf = routine("dpotrf_", as: Potrf.self), let potri = routine("dpotri_", as: Potrf.self),
              let trtri = routine("dtrtri_", as: Trtri.self),
              let syrk = routine("dsyrk_", as: Syrk.self), let gemm = routine("dgemm_", as: Gemm.self),
              let symm = routine("dsymm_", as: Symm.self), let trsm = routine("dtrsm_", as: Trsm.self),
              let trmm = routine("dtrmm_", as: Trsm.self), let trsv = routine("dtrsv_", as: Trsv.self),
              let gemv = routine("dgemv_", as: Gemv.self)
        else {
            dlclose(handle)
            return nil
        }
        var description = (path as NSString).lastPathComponent
        if let config = routine("openblas_get_config", as: Text.self),
           let core = routine("openblas_get_corename", as: Text.self) {
            description += ": \(string(config())), core \(string(core()))"
        }
        return BLASLibrary(dpotrf: potrf, dpotri: potri, dtrtri: trtri, dsyrk: syrk, dgemm: gemm, dsymm: symm, dtrsm: trsm,
                           dtrmm: trmm, dtrsv: trsv, dgemv: gemv, setThreads: routine("openblas_set_num_threads", as: SetThreads.self),
                           description: description)
    }

    private static func string(_ text: UnsafeMutablePointer<CChar>?) -> String {
        text.map { String(cString: $0).trimmingCharacters(in: .whitespaces) } ?? "?"
    }
}
