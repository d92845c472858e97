import CCHOLMOD

/// Owns (at most) one `cholmod_dense`, column-major with real values.
///
/// `cholmod_solve2` may replace the object behind a handle when its size is wrong, so the
/// pointer is a variable: an owner that starts empty is a reusable solve output or workspace.
final class CholmodDense {
    let common: CholmodCommon
    var pointer: UnsafeMutablePointer<cholmod_dense>?

    /// An empty handle, for `cholmod_solve2` to allocate into on first use and reuse after.
    init(common: CholmodCommon) {
        self.common = common
        self.pointer = nil
    }

    /// A zero-filled `rows × columns` matrix.
    init(rows: Int, columns: Int, common: CholmodCommon) throws {
        guard let matrix = cholmod_zeros(rows, columns, CHOLMOD_REAL, common.pointer) else {
            throw CholmodError(operation: "zeros", status: common.status)
        }
        self.common = common
        self.pointer = matrix
    }

    deinit {
        if pointer != nil { cholmod_free_dense(&pointer, common.pointer) }
    }

    var rowCount: Int { pointer.map { Int($0.pointee.nrow) } ?? 0 }
    var columnCount: Int { pointer.map { Int($0.pointee.ncol) } ?? 0 }
    /// Leading dimension (distance between columns).
    var leadingDimension: Int { pointer.map { Int($0.pointee.d) } ?? 0 }

    /// The values, column-major with leading dimension ``leadingDimension``.
    var values: UnsafeMutableBufferPointer<Double> {
        guard let matrix = pointer else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
        return UnsafeMutableBufferPointer(
            start: matrix.pointee.x.assumingMemoryBound(to: Double.self),
            count: Int(matrix.pointee.nzmax)
        )
    }
}
