/// Thin Swift wrappers over the BLAS/LAPACK routines the dense kernels use (column-major,
/// Fortran calling convention). Dimensions are `Int`; pointers are borrowed for the call.
/// The routines come from ``BLASLibrary/current``.
package enum BLAS {
    private static var library: BLASLibrary { BLASLibrary.current }

    /// C ← α·A'A + β·C (lower triangle of the k × k matrix C; A is n × k).
    static func syrkTransposed(n: Int, k: Int, alpha: Double, A: UnsafePointer<Double>, lda: Int,
                               beta: Double, C: UnsafeMutablePointer<Double>, ldc: Int) {
        var (n32, k32, lda32, ldc32) = (Int32(k), Int32(n), Int32(lda), Int32(ldc))
        var (a, b) = (alpha, beta)
        library.dsyrk("L", "T", &n32, &k32, &a, A, &lda32, &b, C, &ldc32)
    }

    /// C ← α·op(A)·op(B) + β·C.
    package static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                     A: UnsafePointer<Double>, lda: Int, B: UnsafePointer<Double>, ldb: Int,
                     beta: Double, C: UnsafeMutablePointer<Double>, ldc: Int) {
        var (m32, n32, k32) = (Int32(m), Int32(n), Int32(k))
        var (lda32, ldb32, ldc32) = (Int32(lda), Int32(ldb), Int32(ldc))
        var (a, b) = (alpha, beta)
        library.dgemm(transA ? "T" : "N", transB ? "T" : "N", &m32, &n32, &k32, &a, A, &lda32, B, &ldb32, &b, C, &ldc32)
    }

    /// C ← α·A·B + β·C with A symmetric m × m (lower triangle stored), B and C m × n.
    static func symmLeftLowerFull(m: Int, n: Int, alpha: Double, A: UnsafePointer<Double>, lda: Int,
                              B: UnsafePointer<Double>, ldb: Int, beta: Double,
                              C: UnsafeMutablePointer<Double>, ldc: Int) {
        var (m32, n32, lda32, ldb32, ldc32) = (Int32(m), Int32(n), Int32(lda), Int32(ldb), Int32(ldc))
        var (a, b) = (alpha, beta)
        library.dsymm("L", "L", &m32, &n32, &a, A, &lda32, B, &ldb32, &b, C, &ldc32)
    }

    /// B ← α·op(L)⁻¹·B (`left`) or α·B·op(L)⁻¹ with L lower triangular (non-unit), B m × n.
    static func trsmLower(left: Bool, transposed: Bool, m: Int, n: Int, alpha: Double, L: UnsafePointer<Double>, ldl: Int,
                          B: UnsafeMutablePointer<Double>, ldb: Int) {
        if m == 0 || n == 0 { return }
        var (m32, n32, ldl32, ldb32) = (Int32(m), Int32(n), Int32(ldl), Int32(ldb))
        var a = alpha
        library.dtrsm(left ? "L" : "R", "L", transposed ? "T" : "N", "N", &m32, &n32, &a, L, &ldl32, B, &ldb32)
    }

    /// B ← L·B with L lower triangular (m × m, non-unit), B m × n.
    static func trmmLeftLower(m: Int, n: Int, L: UnsafePointer<Double>, ldl: Int, B: UnsafeMutablePointer<Double>, ldb: Int) {
        if m == 0 || n == 0 { return }
        var (m32, n32, ldl32, ldb32) = (Int32(m), Int32(n), Int32(ldl), Int32(ldb))
        var one = 1.0
        library.dtrmm("L", "L", "N", "N", &m32, &n32, &one, L, &ldl32, B, &ldb32)
    }

    /// y ← α·op(A)·x + β·y with A m × n.
    static func gemv(transposed: Bool, m: Int, n: Int, alpha: Double, A: UnsafePointer<Double>, lda: Int,
                     x: UnsafePointer<Double>, beta: Double, y: UnsafeMutablePointer<Double>) {
        if m == 0 || n == 0 { return }
        var (m32, n32, lda32, inc) = (Int32(m), Int32(n), Int32(lda), Int32(1))
        var (a, b) = (alpha, beta)
        library.dgemv(transposed ? "T" : "N", &m32, &n32, &a, A, &lda32, x, &inc, &b, y, &inc)
    }

    /// x ← L'⁻¹x with L lower triangular (n × n).
    static func trsvLowerTransposed(n: Int, L: UnsafePointer<Double>, ldl: Int, x: UnsafeMutablePointer<Double>) {
        if n == 0 { return }
        var (n32, ldl32, inc) = (Int32(n), Int32(ldl), Int32(1))
        library.dtrsv("L", "T", "N", &n32, L, &ldl32, x, &inc)
    }

    /// Cholesky factorization in place (lower triangle). Returns LAPACK's `info` (0 = success,
    /// k > 0 = the leading minor of order k is not positive definite).
    @discardableResult
    package static func potrfLower(n: Int, A: UnsafeMutablePointer<Double>, lda: Int) -> Int {
        var (n32, lda32, info) = (Int32(n), Int32(lda), Int32(0))
        if n == 0 { return 0 }
        library.dpotrf("L", &n32, A, &lda32, &info)
        return Int(info)
    }

    /// Inverse of `L L'` from its Cholesky factor, in place (lower triangle).
    @discardableResult
    static func potriLower(n: Int, A: UnsafeMutablePointer<Double>, lda: Int) -> Int {
        var (n32, lda32, info) = (Int32(n), Int32(lda), Int32(0))
        if n == 0 { return 0 }
        library.dpotri("L", &n32, A, &lda32, &info)
        return Int(info)
    }

    /// Inverse of a lower-triangular (non-unit) matrix, in place. Returns LAPACK's `info`.
    @discardableResult
    package static func trtriLower(n: Int, A: UnsafeMutablePointer<Double>, lda: Int) -> Int {
        var (n32, lda32, info) = (Int32(n), Int32(lda), Int32(0))
        if n == 0 { return 0 }
        library.dtrtri("L", "N", &n32, A, &lda32, &info)
        return Int(info)
    }
}
