import CMPI
import MixedModels

/// The ranks of an MPI job (`MPI_COMM_WORLD`) as a ``ProcessGroup``: owns MPI's initialization
/// and finalization (one per process). MPI is called from the thread that created it only
/// (`MPI_THREAD_FUNNELED`): the fit's collectives all run on the main thread.
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private var finalized = false

    /// Initializes MPI. Fails (returns nil) when MPI cannot start, with MPI's own message on
    /// standard error.
    public init?() {
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, lmm_mpi_thread_funneled(), &provided) == lmm_mpi_success() else { return nil }
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(lmm_mpi_comm_world(), &rank)
        MPI_Comm_size(lmm_mpi_comm_world(), &size)
        self.rank = Int(rank)
        self.size = Int(size)
    }

    /// Finalizes MPI (collective: every rank, at the end; later calls do nothing).
    public func finish() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// MPI counts are Int32: larger buffers go in pieces of at most 2³⁰ elements.
    private static let piece = 1 << 30

    public func broadcast(_ bytes: inout [UInt8], from root: Int) {
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = min(Self.piece, buffer.count - offset)
                MPI_Bcast(buffer.baseAddress! + offset, Int32(count), lmm_mpi_byte(), Int32(root), lmm_mpi_comm_world())
                offset += count
            }
        }
    }

    public func allreduceSum(_ values: inout [Double]) { allreduce(&values, lmm_mpi_sum()) }

    public func maximum(_ values: inout [Double]) { allreduce(&values, lmm_mpi_max()) }

    private func allreduce(_ values: inout [Double], _ operation: MPI_Op) {
        values.withUnsafeMutableBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = min(Self.piece, buffer.count - offset)
                MPI_Allreduce(lmm_mpi_in_place(), buffer.baseAddress! + offset, Int32(count), lmm_mpi_double(), operation,
                              lmm_mpi_comm_world())
                offset += count
            }
        }
    }

    public func sum(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = min(Self.piece, buffer.count - offset)
                let start = buffer.baseAddress! + offset
                if rank == 0 {
                    MPI_Reduce(lmm_mpi_in_place(), start, Int32(count), lmm_mpi_double(), lmm_mpi_sum(), 0, lmm_mpi_comm_world())
                } else {
                    MPI_Reduce(start, nil, Int32(count), lmm_mpi_double(), lmm_mpi_sum(), 0, lmm_mpi_comm_world())
                }
                MPI_Bcast(start, Int32(count), lmm_mpi_double(), 0, lmm_mpi_comm_world())
                offset += count
            }
        }
    }

    deinit { finish() }
}
