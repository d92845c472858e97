/// A new response for the same design: only the y column of `Z'[X y]` and `[X y]'[X y]`
/// changes, so a refit (a parametric bootstrap replicate) keeps `Z'Z`, `X'X` and the
/// symbolic analysis.
extension CrossProducts {
    /// Replaces y by `y` in `Z'[X̃ ỹ]` and `[X̃ ỹ]'[X̃ ỹ]`, with ỹ its residual on X̃
    /// (``FixedEffectBasis``; X̃ is formed again from X, as in the initializer).
    func replaceResponse(_ y: [Double], design: RandomEffectsDesign, X: Matrix) {
        let n = design.n, q = design.q, m = p + 1
        precondition(y.count == n)
        var workingX = X.values
        var basis = FixedEffectBasis.orthogonalize(&workingX, n: n, p: p)
        var y = y
        basis.removeFit(from: &y, workingX: workingX, n: n)
        self.basis = basis
        let Z = design.Z
        let colptr = Z.columnPointers, rows = Z.rowIndices, values = Z.values
        for c in 0..<q {
            var sum = 0.0
            for index in Int(colptr[c])..<Int(colptr[c + 1]) { sum += values[index] * y[Int(rows[index])] }
            ZtXy[c + p * q] = sum
        }
        for j in 0..<p {
            var sum = 0.0
            for i in 0..<n { sum += workingX[i + j * n] * y[i] }
            XyTXy[p + j * m] = sum
            XyTXy[j + p * m] = sum
        }
        var yy = 0.0
        for value in y { yy += value * value }
        XyTXy[p + p * m] = yy
    }
}
