/// The entries of Σ = (LL')⁻¹ on the pattern of a sparse Cholesky factor L, computed in place
/// of L by the supernodal form of Takahashi's equations, from the last supernode back:
///
///     Y     = L_BJ L_JJ⁻¹
///     Σ_BJ  = −Σ_BB Y
///     Σ_JJ  = (L_JJ L_JJ')⁻¹ − Y' Σ_BJ
///
/// for each supernode's columns J and its rows B below them (Σ_BB lies on the pattern of the
/// ancestors, already computed). Dense blocks go through BLAS/LAPACK, so the cost is that of
/// a factorization or two. Simplicial factors are treated as supernodes of one column.
///
/// With `LL' = PAP'`, `A⁻¹[i, j] = Σ[pinv(i), pinv(j)]`; ``entry(_:_:)`` takes permuted indices.
/// Afterwards the factor no longer holds L: refactor before solving with it again.
final class SelectedInverse {
    private let factor: CholmodFactor
    private let firstColumn: [Int]
    private let rowBase: [Int]
    private let rowCount: [Int]
    private let valueBase: [Int]
    private let blockOfColumn: [Int32]
    private let rows: UnsafeBufferPointer<Int32>
    private let values: UnsafeMutableBufferPointer<Double>

    /// Inverts in place. The factor must be a numeric LL' factor.
    init(overwriting factor: CholmodFactor) {
        precondition(factor.isLL, "selected inversion expects an LL' factor")
        self.factor = factor
        let n = factor.size
        var firstColumn: [Int] = [], rowBase: [Int] = [], rowCount: [Int] = [], valueBase: [Int] = []
        if factor.isSupernodal {
            let s = factor.supernodes
            for k in 0...s.count {
                firstColumn.append(Int(s.firstColumn[k]))
                if k < s.count {
                    rowBase.append(Int(s.rowOffset[k]))
                    rowCount.append(s.rowCount(k))
                    valueBase.append(Int(s.valueOffset[k]))
                }
            }
            rows = s.rows
            values = s.values
        } else {
            let c = factor.simplicialColumns
            for j in 0..<n {
                firstColumn.append(j)
                rowBase.append(Int(c.columnPointers[j]))
                rowCount.append(Int(c.columnCounts[j]))
                valueBase.append(Int(c.columnPointers[j]))
            }
            firstColumn.append(n)
            rows = c.rows
            values = c.values
        }
        var blockOfColumn = [Int32](repeating: 0, count: n)
        for s in 0..<(firstColumn.count - 1) {
            for j in firstColumn[s]..<firstColumn[s + 1] { blockOfColumn[j] = Int32(s) }
        }
        self.firstColumn = firstColumn
        self.rowBase = rowBase
        self.rowCount = rowCount
        self.valueBase = valueBase
        self.blockOfColumn = blockOfColumn
        invert()
    }

    private func width(_ s: Int) -> Int { firstColumn[s + 1] - firstColumn[s] }

    private func invert() {
        let blocks = rowCount.count
        var maxBelow = 0, maxWidth = 0
        for s in 0..<blocks {
            maxBelow = max(maxBelow, rowCount[s] - width(s))
            maxWidth = max(maxWidth, width(s))
        }
        var gathered = [Double](repeating: 0, count: maxBelow * maxBelow)
        var product = [Double](repeating: 0, count: maxBelow * maxWidth)
        var position = [Int](repeating: 0, count: maxBelow)
        let x = values.baseAddress!
        for s in stride(from: blocks - 1, through: 0, by: -1) {
            let w = width(s), nr = rowCount[s], nb = nr - w
            let block = x + valueBase[s]
            if nb > 0 {
                let below = block + w
                BLAS.trsmLower(left: false, transposed: false, m: nb, n: w, alpha: 1, L: block, ldl: nr, B: below, ldb: nr)
                gathered.withUnsafeMutableBufferPointer { S in
                    position.withUnsafeMutableBufferPointer { pos in
                        gatherBelow(s, into: S.baseAddress!, positions: pos.baseAddress!)
                    }
                }
                gathered.withUnsafeBufferPointer { S in
                    product.withUnsafeMutableBufferPointer { P in
                        BLAS.symmLeftLowerFull(m: nb, n: w, alpha: -1, A: S.baseAddress!, lda: nb,
                                               B: below, ldb: nr, beta: 0, C: P.baseAddress!, ldc: nb)
                    }
                }
                BLAS.potriLower(n: w, A: block, lda: nr)
                product.withUnsafeBufferPointer { P in
                    BLAS.gemm(transA: true, transB: false, m: w, n: w, k: nb, alpha: -1, A: below, lda: nr,
                              B: P.baseAddress!, ldb: nb, beta: 1, C: block, ldc: nr)
                    for c in 0..<w { for d in 0..<nb { below[d + c * nr] = P[d + c * nb] } }
                }
            } else {
                BLAS.potriLower(n: w, A: block, lda: nr)
            }
        }
    }

    /// Σ_BB of supernode s into `S` (nb × nb, lower triangle, leading dimension nb).
    private func gatherBelow(_ s: Int, into S: UnsafeMutablePointer<Double>, positions: UnsafeMutablePointer<Int>) {
        let w = width(s), nb = rowCount[s] - w
        let B = rows.baseAddress! + rowBase[s] + w
        let x = values.baseAddress!
        var c = 0
        while c < nb {
            let t = Int(blockOfColumn[Int(B[c])])
            let first = firstColumn[t], wt = width(t), nrt = rowCount[t]
            let rowsT = rows.baseAddress! + rowBase[t]
            // Positions in t's rows of B[c...]: its own columns directly, rows below by merging.
            var cursor = wt
            for d in c..<nb {
                let i = Int(B[d])
                if i < first + wt {
                    positions[d] = i - first
                } else {
                    while cursor < nrt && Int(rowsT[cursor]) < i { cursor += 1 }
                    precondition(cursor < nrt && Int(rowsT[cursor]) == i, "selected inverse: pattern is not closed")
                    positions[d] = cursor
                }
            }
            var end = c
            while end < nb && Int(B[end]) < first + wt { end += 1 }
            for cc in c..<end {
                let column = x + valueBase[t] + (Int(B[cc]) - first) * nrt
                for d in cc..<nb { S[d + cc * nb] = column[positions[d]] }
            }
            c = end
        }
    }

    /// Σ[i, j] for permuted indices whose entry lies on the pattern of L (or its transpose).
    func entry(_ i: Int, _ j: Int) -> Double {
        let (row, column) = i >= j ? (i, j) : (j, i)
        let t = Int(blockOfColumn[column])
        let first = firstColumn[t], w = width(t), nr = rowCount[t]
        let position: Int
        if row < first + w {
            position = row - first
        } else {
            var low = rowBase[t] + w, high = rowBase[t] + nr
            while low < high {
                let mid = (low + high) / 2
                if Int(rows[mid]) < row { low = mid + 1 } else { high = mid }
            }
            precondition(low < rowBase[t] + nr && Int(rows[low]) == row, "Σ[\(i), \(j)] is not on the pattern of L")
            position = low - rowBase[t]
        }
        return values[valueBase[t] + (column - first) * nr + position]
    }
}
