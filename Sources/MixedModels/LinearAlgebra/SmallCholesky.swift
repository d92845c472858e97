/// Kernels on small k × k lower-triangular Cholesky factors (k is the number of effects of a
/// term, usually 1–3), column-major, written out because a BLAS call would cost more than the
/// arithmetic.
enum SmallCholesky {
    /// L ← chol(L) in place (lower triangle; the upper is left alone). False if not positive definite.
    @inline(__always)
    static func factorInPlace(_ L: UnsafeMutablePointer<Double>, _ k: Int) -> Bool {
        for j in 0..<k {
            var d = L[j + j * k]
            for c in 0..<j { d -= L[j + c * k] * L[j + c * k] }
            guard d > 0 else { return false }
            let pivot = d.squareRoot()
            L[j + j * k] = pivot
            for i in (j + 1)..<max(j + 1, k) {
                var s = L[i + j * k]
                for c in 0..<j { s -= L[i + c * k] * L[j + c * k] }
                L[i + j * k] = s / pivot
            }
        }
        return true
    }

    /// x ← L⁻¹x.
    @inline(__always)
    static func solveLower(_ L: UnsafePointer<Double>, _ k: Int, _ x: UnsafeMutablePointer<Double>) {
        for i in 0..<k {
            var s = x[i]
            for c in 0..<i { s -= L[i + c * k] * x[c] }
            x[i] = s / L[i + i * k]
        }
    }

    /// x ← L'⁻¹x.
    @inline(__always)
    static func solveUpper(_ L: UnsafePointer<Double>, _ k: Int, _ x: UnsafeMutablePointer<Double>) {
        for i in stride(from: k - 1, through: 0, by: -1) {
            var s = x[i]
            for c in (i + 1)..<max(i + 1, k) { s -= L[c + i * k] * x[c] }
            x[i] = s / L[i + i * k]
        }
    }

    /// B ← B L'⁻¹ for B with `rows` rows and k columns (leading dimension `rows`).
    @inline(__always)
    static func solveRightTransposed(_ B: UnsafeMutablePointer<Double>, rows: Int, L: UnsafePointer<Double>, _ k: Int) {
        // Row by row: b L' = a  ⇒  L b' = a'.
        for r in 0..<rows {
            for i in 0..<k {
                var s = B[r + i * rows]
                for c in 0..<i { s -= L[i + c * k] * B[r + c * rows] }
                B[r + i * rows] = s / L[i + i * k]
            }
        }
    }

    /// B ← B L⁻¹ for B with `rows` rows and k columns.
    @inline(__always)
    static func solveRight(_ B: UnsafeMutablePointer<Double>, rows: Int, L: UnsafePointer<Double>, _ k: Int) {
        // b L = a  ⇒  L' b' = a'.
        for r in 0..<rows {
            for i in stride(from: k - 1, through: 0, by: -1) {
                var s = B[r + i * rows]
                for c in (i + 1)..<max(i + 1, k) { s -= L[c + i * k] * B[r + c * rows] }
                B[r + i * rows] = s / L[i + i * k]
            }
        }
    }

    /// Q ← L⁻ᵀ Q L⁻¹ for a k × k matrix Q.
    static func congruenceByInverse(_ L: UnsafePointer<Double>, _ k: Int, _ Q: UnsafeMutablePointer<Double>) {
        solveRight(Q, rows: k, L: L, k)                 // Q L⁻¹
        // L⁻ᵀ (Q L⁻¹): solve L' X = Y column by column.
        for c in 0..<k { solveUpper(L, k, Q + c * k) }
    }
}

extension SmallCholesky {
    /// out ← A⁻¹ for a symmetric positive-definite k × k A (column-major; only the lower
    /// triangle is read): the one small inverse of the package. No allocation.
    ///
    /// `work` (k × k) receives the Cholesky factor L of A and may be A itself (A is then
    /// overwritten by L); `out` must not overlap either. For k = 1, out = 1/a (work untouched);
    /// otherwise column c of A⁻¹ is L'⁻¹L⁻¹eᶜ.
    /// (These are the operations the streaming fit always used; the approximate start of
    /// the Newton fit used L⁻ᵀ I L⁻¹ row by row before, so its start, and a large fit's
    /// estimates, moved in the last bits when it came here: 1.7e-15 relative in θ on the
    /// 200k-row users × items benchmark.)
    /// - Returns: false when A is not positive definite; `out` is then not
    ///   an inverse and must not be used.
    static func inverse(of A: UnsafePointer<Double>, _ k: Int, work: UnsafeMutablePointer<Double>,
                        into out: UnsafeMutablePointer<Double>) -> Bool {
        if k == 1 {
            guard A[0] > 0 else { return false }
            out[0] = 1 / A[0]
            return true
        }
        if UnsafePointer(work) != A {
            for index in 0..<(k * k) { work[index] = A[index] }
        }
        guard factorInPlace(work, k) else { return false }
        for c in 0..<k {
            let column = out + c * k
            for r in 0..<k { column[r] = r == c ? 1 : 0 }
            solveLower(work, k, column)
            solveUpper(work, k, column)
        }
        return true
    }

    /// A⁻¹ of a symmetric positive-definite k × k A, or nil when it is not positive definite.
    static func inverse(_ A: [Double], _ k: Int) -> [Double]? {
        guard k > 0 else { return [] }
        var work = A, out = [Double](repeating: 0, count: k * k)
        let ok = work.withUnsafeMutableBufferPointer { w in
            out.withUnsafeMutableBufferPointer { inverse(of: w.baseAddress!, k, work: w.baseAddress!, into: $0.baseAddress!) }
        }
        return ok ? out : nil
    }
}
