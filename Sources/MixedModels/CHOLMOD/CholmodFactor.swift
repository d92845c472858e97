import CCHOLMOD
import Foundation

/// Owns one `cholmod_factor`: the sparse Cholesky factor `L` with `LL' = P A P'`.
///
/// The life cycle follows the mixed-model loop (and sprs/faer's split of symbolic and
/// numeric work): ``init(analyzing:)`` finds the fill-reducing ordering and the pattern of
/// `L` once per model; ``factorize(_:shift:)`` refills the numbers in place for each new θ;
/// ``solve(_:_:into:workspace:)`` reuses its output and workspace, so an evaluation allocates
/// nothing of its own.
final class CholmodFactor {
    let common: CholmodCommon
    let pointer: UnsafeMutablePointer<cholmod_factor>

    /// Symbolic analysis of the symmetric matrix `A` (upper triangle used): ordering
    /// (AMD or METIS, CHOLMOD's choice), elimination tree, supernodes.
    init(analyzing A: CholmodSparse) throws {
        guard let factor = cholmod_analyze(A.pointer, A.common.pointer) else {
            throw CholmodError(operation: "analyze", status: A.common.status)
        }
        self.common = A.common
        self.pointer = factor
    }

    deinit {
        var factor: UnsafeMutablePointer<cholmod_factor>? = pointer
        cholmod_free_factor(&factor, common.pointer)
    }

    /// Numeric factorization of `A + shift·I` on the analysed pattern.
    /// - Returns: false when the matrix is not positive definite (`L` is then incomplete).
    @discardableResult
    func factorize(_ A: CholmodSparse, shift: Double) throws -> Bool {
        var beta: (Double, Double) = (shift, 0)
        let ok = withUnsafeMutableBytes(of: &beta) { raw in
            cholmod_factorize_p(
                A.pointer, raw.baseAddress!.assumingMemoryBound(to: Double.self),
                nil, 0, pointer, common.pointer
            )
        }
        try common.check("factorize")
        return ok != 0 && common.status != CHOLMOD_NOT_POSDEF
    }

    /// The systems `cholmod_solve2` solves with an `LL'` factor.
    enum System: Int32 {
        /// x = A⁻¹ b
        case A = 0
        /// x = L⁻¹ b
        case L = 4
        /// x = L'⁻¹ b
        case Lt = 5
        /// x = P b
        case P = 7
        /// x = P' b
        case Pt = 8
    }

    /// Reusable workspace of `cholmod_solve2`.
    final class SolveWorkspace {
        let Y: CholmodDense
        let E: CholmodDense
        init(common: CholmodCommon) {
            Y = CholmodDense(common: common)
            E = CholmodDense(common: common)
        }
    }

    /// Solves `system` for the columns of `B`, writing the solution into `X` (allocated by
    /// CHOLMOD on first use, reused while its shape stays the same).
    func solve(_ system: System, _ B: CholmodDense, into X: CholmodDense, workspace: SolveWorkspace) throws {
        let ok = cholmod_solve2(
            system.rawValue, pointer, B.pointer, nil,
            &X.pointer, nil, &workspace.Y.pointer, &workspace.E.pointer, common.pointer
        )
        if ok == 0 { throw CholmodError(operation: "solve", status: common.status) }
    }

    // MARK: Structure

    /// Order of the factor.
    var size: Int { Int(pointer.pointee.n) }
    var isSupernodal: Bool { pointer.pointee.is_super != 0 }
    var isLL: Bool { pointer.pointee.is_ll != 0 }

    /// The fill-reducing permutation: row `k` of `P A P'` is row `permutation[k]` of `A`.
    var permutation: UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: pointer.pointee.Perm.assumingMemoryBound(to: Int32.self), count: size)
    }

    /// Number of stored entries of `L` (for supernodal factors, of its dense blocks).
    var storedCount: Int {
        isSupernodal ? Int(pointer.pointee.xsize) : Int(pointer.pointee.nzmax)
    }

    /// log det(L L') = 2 Σⱼ log Lⱼⱼ, read off the diagonal of the numeric factor.
    var logDeterminant: Double {
        precondition(isLL, "log determinant expects an LL' factor")
        var sum = 0.0
        let x = pointer.pointee.x.assumingMemoryBound(to: Double.self)
        if isSupernodal {
            let blocks = supernodes
            for s in 0..<blocks.count {
                let (first, width, rows, offset) = (blocks.firstColumn[s], blocks.width(s), blocks.rowCount(s), blocks.valueOffset[s])
                _ = first
                for j in 0..<width { sum += log(x[Int(offset) + j * rows + j]) }
            }
        } else {
            let p = pointer.pointee.p.assumingMemoryBound(to: Int32.self)
            for j in 0..<size { sum += log(x[Int(p[j])]) }
        }
        return 2 * sum
    }

    /// The supernodal layout of `L` (valid only when ``isSupernodal``).
    var supernodes: Supernodes {
        let count = Int(pointer.pointee.nsuper)
        return Supernodes(
            count: count,
            firstColumn: UnsafeBufferPointer(start: pointer.pointee.super.assumingMemoryBound(to: Int32.self), count: count + 1),
            rowOffset: UnsafeBufferPointer(start: pointer.pointee.pi.assumingMemoryBound(to: Int32.self), count: count + 1),
            valueOffset: UnsafeBufferPointer(start: pointer.pointee.px.assumingMemoryBound(to: Int32.self), count: count + 1),
            rows: UnsafeBufferPointer(start: pointer.pointee.s.assumingMemoryBound(to: Int32.self), count: Int(pointer.pointee.ssize)),
            // Before the first numeric factorization a symbolic factor has no values.
            values: pointer.pointee.x.map {
                UnsafeMutableBufferPointer(start: $0.assumingMemoryBound(to: Double.self), count: Int(pointer.pointee.xsize))
            } ?? UnsafeMutableBufferPointer(start: nil, count: 0)
        )
    }

    /// The simplicial layout of `L` (valid only when not ``isSupernodal``): column `j` holds
    /// `columnCounts[j]` entries from `columnPointers[j]`, the diagonal first.
    var simplicialColumns: SimplicialColumns {
        SimplicialColumns(
            columnPointers: UnsafeBufferPointer(start: pointer.pointee.p.assumingMemoryBound(to: Int32.self), count: size + 1),
            columnCounts: UnsafeBufferPointer(start: pointer.pointee.nz.assumingMemoryBound(to: Int32.self), count: size),
            rows: UnsafeBufferPointer(start: pointer.pointee.i.assumingMemoryBound(to: Int32.self), count: Int(pointer.pointee.nzmax)),
            values: UnsafeMutableBufferPointer(start: pointer.pointee.x.assumingMemoryBound(to: Double.self), count: Int(pointer.pointee.nzmax))
        )
    }

    /// CHOLMOD's supernodes: supernode `s` covers columns `firstColumn[s] ..< firstColumn[s+1]`
    /// and stores a dense column-major block of `rowCount(s)` rows (the row indices
    /// `rows[rowOffset[s] ..< rowOffset[s+1]]`, its own columns first) at `values[valueOffset[s]...]`.
    struct Supernodes {
        let count: Int
        let firstColumn: UnsafeBufferPointer<Int32>
        let rowOffset: UnsafeBufferPointer<Int32>
        let valueOffset: UnsafeBufferPointer<Int32>
        let rows: UnsafeBufferPointer<Int32>
        let values: UnsafeMutableBufferPointer<Double>

        func width(_ s: Int) -> Int { Int(firstColumn[s + 1] - firstColumn[s]) }
        func rowCount(_ s: Int) -> Int { Int(rowOffset[s + 1] - rowOffset[s]) }
    }

    struct SimplicialColumns {
        let columnPointers: UnsafeBufferPointer<Int32>
        let columnCounts: UnsafeBufferPointer<Int32>
        let rows: UnsafeBufferPointer<Int32>
        let values: UnsafeMutableBufferPointer<Double>
    }
}

extension CholmodFactor {
    /// Statistics of the symbolic analysis, for benchmarks and diagnostics.
    struct Statistics: CustomStringConvertible {
        var size: Int
        var nonzeros: Double
        var flops: Double
        var supernodes: Int
        var largestSupernode: Int
        var isSupernodal: Bool
        var description: String {
            String(format: "n %d, nnz(L) %.3g, flops %.3g, %@ %d supernodes (largest %d columns)",
                   size, nonzeros, flops, isSupernodal ? "supernodal" : "simplicial", supernodes, largestSupernode)
        }
    }

    var statistics: Statistics {
        var largest = 1, count = size
        if isSupernodal {
            let s = supernodes
            count = s.count
            largest = (0..<s.count).map { s.width($0) }.max() ?? 0
        }
        return Statistics(size: size, nonzeros: common.pointer.pointee.lnz, flops: common.pointer.pointee.fl,
                          supernodes: count, largestSupernode: largest, isSupernodal: isSupernodal)
    }
}
