import Foundation

/// Threads of the numerical libraries underneath CHOLMOD.
///
/// CHOLMOD's supernodal factorization opens OpenMP regions with a fixed request of four
/// threads, and OpenBLAS keeps its own pool of spinning threads. On a small machine the two
/// pools fight over the cores: measured on the 73k-row crossed model (2 cores), one
/// evaluation took 37 ms with both pools active and 24 ms with OpenMP confined to one
/// thread. So OpenMP regions are made inactive, and OpenBLAS gets all cores only when the
/// factor has a dense block big enough to repay its threads.
package enum Threading {
    private typealias SetInt = @convention(c) (Int32) -> Void
    private typealias GetInt = @convention(c) () -> Int32

    nonisolated(unsafe) private static let handle = dlopen(nil, RTLD_NOW)

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        guard let pointer = dlsym(handle, name) else { return nil }
        return unsafeBitCast(pointer, to: type)
    }

    /// Makes every OpenMP parallel region run on the calling thread
    /// (`omp_set_max_active_levels(0)`); CHOLMOD is then sequential outside BLAS.
    static func confineOpenMP() {
        symbol("omp_set_max_active_levels", as: SetInt.self)?(0)
    }

    /// Threads to use at most: the cores of this machine, or `LMM_THREADS` when set.
    package static let coreCount: Int = {
        if let text = ProcessInfo.processInfo.environment["LMM_THREADS"], let value = Int(text), value > 0 { return value }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Sets the number of OpenBLAS threads (no effect with another BLAS): of the system's
    /// OpenBLAS, which CHOLMOD calls, and of the dense kernels' library when that is another.
    package static func setBLASThreads(_ count: Int) {
        symbol("openblas_set_num_threads", as: SetInt.self)?(Int32(count))
        BLASLibrary.current.setThreads?(Int32(count))
    }

    /// Sets the number of threads of the dense kernels' library only (``BLASLibrary/current``):
    /// the blocked engine calls nothing else, and setting the system OpenBLAS's count would
    /// start the threads that ``BLASLibrary`` ended.
    static func setDenseKernelThreads(_ count: Int) {
        BLASLibrary.current.setThreads?(Int32(count))
    }

    /// Threads worth using for a factor whose largest dense block has `columns` columns:
    /// below about 600 columns the threads cost more than they bring (dpotrf on this machine: 1,200 columns 14.7 ms on one thread, 9.6 ms on two).
    static func blasThreads(forLargestBlock columns: Int) -> Int {
        columns >= 600 ? coreCount : 1
    }
}
