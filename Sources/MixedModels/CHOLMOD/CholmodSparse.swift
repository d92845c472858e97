import CCHOLMOD

/// Owns one `cholmod_sparse`: a compressed-column matrix with 32-bit indices and real values.
final class CholmodSparse {
    let common: CholmodCommon
    let pointer: UnsafeMutablePointer<cholmod_sparse>

    /// Storage of a square matrix: both triangles, or only the upper one used.
    enum Symmetry: Int32 {
        /// Rectangular or unsymmetric: every stored entry is used.
        case general = 0
        /// Symmetric: CHOLMOD reads entries on and above the diagonal and ignores the rest.
        case upper = 1
    }

    /// Allocates a packed matrix with sorted columns and room for `nonzeros` entries.
    /// The column pointers, row indices and values are for the caller to fill.
    init(rows: Int, columns: Int, nonzeros: Int, symmetry: Symmetry, common: CholmodCommon) throws {
        guard let matrix = cholmod_allocate_sparse(
            rows, columns, nonzeros, 1, 1, symmetry.rawValue, CHOLMOD_REAL, common.pointer
        ) else {
            throw CholmodError(operation: "allocate_sparse", status: common.status)
        }
        self.common = common
        self.pointer = matrix
    }

    deinit {
        var matrix: UnsafeMutablePointer<cholmod_sparse>? = pointer
        cholmod_free_sparse(&matrix, common.pointer)
    }

    var rowCount: Int { Int(pointer.pointee.nrow) }
    var columnCount: Int { Int(pointer.pointee.ncol) }
    var nonzeroCapacity: Int { Int(pointer.pointee.nzmax) }

    /// Column pointers, `columnCount + 1` of them.
    var columnPointers: UnsafeMutableBufferPointer<Int32> {
        UnsafeMutableBufferPointer(start: pointer.pointee.p.assumingMemoryBound(to: Int32.self), count: columnCount + 1)
    }

    /// Row index of each stored entry.
    var rowIndices: UnsafeMutableBufferPointer<Int32> {
        UnsafeMutableBufferPointer(start: pointer.pointee.i.assumingMemoryBound(to: Int32.self), count: nonzeroCapacity)
    }

    /// Value of each stored entry.
    var values: UnsafeMutableBufferPointer<Double> {
        UnsafeMutableBufferPointer(start: pointer.pointee.x.assumingMemoryBound(to: Double.self), count: nonzeroCapacity)
    }

    /// Number of entries actually stored (`p[ncol]`).
    var nonzeroCount: Int { Int(columnPointers[columnCount]) }

    /// Verifies the structure with `cholmod_check_sparse` (for tests and debugging).
    func isValid() -> Bool {
        cholmod_check_sparse(pointer, common.pointer) != 0
    }
}
