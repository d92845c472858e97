import CCHOLMOD

/// Owns one `cholmod_common`: CHOLMOD's settings, statistics and workspace.
///
/// Every other CHOLMOD owner (``CholmodSparse``, ``CholmodDense``, ``CholmodFactor``) keeps
/// a strong reference to the common it was made with, so the common is finished last.
/// Not thread-safe: use one common (and the objects made with it) per thread.
final class CholmodCommon {
    let pointer: UnsafeMutablePointer<cholmod_common>

    /// How the factor is stored.
    enum Mode {
        /// CHOLMOD decides from the flop count (its default, `CHOLMOD_AUTO`).
        case automatic
        /// Always supernodal: dense blocks through BLAS/LAPACK.
        case supernodal
        /// Always simplicial (column by column).
        case simplicial
    }

    init(mode: Mode = .automatic) {
        Threading.confineOpenMP()
        pointer = .allocate(capacity: 1)
        cholmod_start(pointer)
        // LL' rather than LDL': log|L|² = 2Σ log Lⱼⱼ and CHOLMOD_L solves apply L⁻¹, the
        // quantities of Bates et al. (2015).
        pointer.pointee.final_ll = 1
        pointer.pointee.final_super = 1
        // Errors come back through `status`; CHOLMOD itself prints nothing.
        pointer.pointee.print = 0
        switch mode {
        case .automatic: pointer.pointee.supernodal = CHOLMOD_AUTO
        case .supernodal: pointer.pointee.supernodal = CHOLMOD_SUPERNODAL
        case .simplicial: pointer.pointee.supernodal = CHOLMOD_SIMPLICIAL
        }
    }

    deinit {
        cholmod_finish(pointer)
        pointer.deallocate()
    }

    /// CHOLMOD's status after the last call (`CHOLMOD_OK`, a warning > 0 or an error < 0).
    var status: Int32 { pointer.pointee.status }

    /// Throws when the last call failed (a negative status).
    func check(_ operation: String) throws {
        let status = pointer.pointee.status
        if status < 0 { throw CholmodError(operation: operation, status: status) }
    }
}

/// A failed CHOLMOD call.
struct CholmodError: Error, CustomStringConvertible {
    var operation: String
    var status: Int32

    var description: String {
        let reason: String
        switch status {
        case CHOLMOD_OUT_OF_MEMORY: reason = "out of memory"
        case CHOLMOD_TOO_LARGE: reason = "problem too large for 32-bit indices"
        case CHOLMOD_INVALID: reason = "invalid input"
        case CHOLMOD_NOT_INSTALLED: reason = "method not installed"
        case CHOLMOD_GPU_PROBLEM: reason = "GPU problem"
        default: reason = "status \(status)"
        }
        return "CHOLMOD \(operation) failed: \(reason)"
    }
}
