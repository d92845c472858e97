/// The cross-products of the model matrices, computed once per model so that each
/// evaluation costs a refactorization, not a pass over the n rows (as MixedModels.jl's `A`):
/// `G = Z'Z` (sparse, symmetric), `Z'[X y]`, `X'X`, `X'y`, `y'y`.
///
/// X and y enter in the working coordinates of ``FixedEffectBasis`` (X̃ orthogonal, ỹ the
/// least-squares residual), so a shifted response or covariate keeps its digits; `basis`
/// maps the fixed-effect results back.
///
/// `G` is stored in the upper triangle with a block pattern: each column block (term b,
/// level m) holds, for every term a < b, the dense kᵃ × kᵇ blocks of the levels of a that
/// share a row with level m, then its own full kᵇ × kᵇ diagonal block (CHOLMOD ignores the
/// part below the diagonal). Every column of a block has the same rows, and every stored
/// block is dense, so `Λ'GΛ` has exactly this pattern for any θ.
final class CrossProducts {
    /// `Z'Z`, q × q, upper, block pattern.
    let G: CholmodSparse
    /// `Z'[X y]`, q × (p + 1), column-major.
    var ZtXy: [Double]
    /// `[X y]'[X y]`, (p + 1) × (p + 1), lower triangle, column-major.
    var XyTXy: [Double]
    let p: Int
    /// The working coordinates of X and y (``FixedEffectBasis``).
    var basis: FixedEffectBasis

    init(design: RandomEffectsDesign, X: Matrix, y: [Double]) throws {
        let n = design.n, q = design.q, p = X.columns
        self.p = p
        let terms = design.terms
        let termCount = terms.count
        let layouts = design.layouts
        let k = terms.map(\.effectCount)
        let colptrZ = design.Z.columnPointers, rowsZ = design.Z.rowIndices
        // The hot loops below run over every row for every pair of terms: they read the codes
        // and effects through buffers of their own (array accesses through the term structs
        // cost retains and bounds checks per element), freed when the initializer ends.
        let codes = terms.map { term -> UnsafeMutableBufferPointer<Int32> in
            let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: term.codes.count)
            _ = buffer.initialize(from: term.codes)
            return buffer
        }
        let effects = terms.map { term -> UnsafeMutableBufferPointer<Double> in
            let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: term.effects.values.count)
            _ = buffer.initialize(from: term.effects.values)
            return buffer
        }
        defer {
            for buffer in codes { buffer.deallocate() }
            for buffer in effects { buffer.deallocate() }
        }

        // Pattern: for each column block, the sorted levels of each earlier term.
        var columnBlockRows: [Int32] = []
        columnBlockRows.reserveCapacity(design.Z.nonzeroCount)
        var blockStart: [Int] = [0]
        let totalLevels = terms.reduce(0) { $0 + $1.levelCount }
        blockStart.reserveCapacity(totalLevels + 1)
        var stamp = [Int32](repeating: -1, count: q + 1)
        var levels: [Int32] = []
        var blockIndex: Int32 = 0
        for b in 0..<termCount {
            let kb = k[b]
            for m in 0..<terms[b].levelCount {
                let c0 = layouts[b].start(level: m)
                let start = Int(colptrZ[c0]), end = Int(colptrZ[c0 + 1])
                for a in 0..<b {
                    let ka = k[a], codesA = codes[a], layoutA = layouts[a]
                    levels.removeAll(keepingCapacity: true)
                    for index in start..<end {
                        let l = Int(codesA[Int(rowsZ[index])])
                        if stamp[layoutA.start(level: l)] != blockIndex {
                            stamp[layoutA.start(level: l)] = blockIndex
                            levels.append(Int32(l))
                        }
                    }
                    levels.sort()
                    for l in levels {
                        for r in 0..<ka { columnBlockRows.append(Int32(layoutA.index(level: Int(l), effect: r))) }
                    }
                }
                for r in 0..<kb { columnBlockRows.append(Int32(c0 + r)) }
                blockStart.append(columnBlockRows.count)
                blockIndex += 1
            }
        }

        // Allocate G: each of a block's k columns repeats the block's rows.
        var nonzeros = 0
        var block = 0
        for b in 0..<termCount {
            for _ in 0..<terms[b].levelCount {
                nonzeros += (blockStart[block + 1] - blockStart[block]) * k[b]
                block += 1
            }
        }
        G = try CholmodSparse(rows: q, columns: q, nonzeros: nonzeros, symmetry: .upper, common: design.Z.common)
        let colptr = G.columnPointers, rowind = G.rowIndices, values = G.values
        colptr[0] = 0
        var column = 0
        block = 0
        for b in 0..<termCount {
            for _ in 0..<terms[b].levelCount {
                let start = blockStart[block], end = blockStart[block + 1]
                for _ in 0..<k[b] {
                    var position = Int(colptr[column])
                    for t in start..<end {
                        rowind[position] = columnBlockRows[t]
                        values[position] = 0
                        position += 1
                    }
                    colptr[column + 1] = Int32(position)
                    column += 1
                }
                block += 1
            }
        }

        // Values: accumulate every row's products into its blocks. `position[layouts[a].start(level: l)]`
        // is where level l of term a sits in the current column block's rows.
        var position = [Int32](repeating: -1, count: q + 1)
        for b in 0..<termCount {
            let kb = k[b]
            let Xb = effects[b]
            for m in 0..<terms[b].levelCount {
                let c0 = layouts[b].start(level: m)
                let first = Int(colptr[c0])
                let blockRows = Int(colptr[c0 + 1]) - first
                var t = 0
                while t < blockRows - kb {
                    let row = Int(rowind[first + t])
                    position[row] = Int32(t)
                    t += k[Int(design.termOfColumn[row])]
                }
                for index in Int(colptrZ[c0])..<Int(colptrZ[c0 + 1]) {
                    let i = Int(rowsZ[index])
                    for s in 0..<kb {
                        let zbs = Xb[i + s * n]
                        let columnStart = first + s * blockRows
                        for a in 0..<b {
                            let ka = k[a]
                            let offset = Int(position[layouts[a].start(level: Int(codes[a][i]))])
                            let Xa = effects[a]
                            for r in 0..<ka { values[columnStart + offset + r] += Xa[i + r * n] * zbs }
                        }
                        let diagonal = columnStart + blockRows - kb
                        for r in 0..<kb { values[diagonal + r] += Xb[i + r * n] * zbs }
                    }
                }
            }
        }

        // Z'[X̃ ỹ] and [X̃ ỹ]'[X̃ ỹ].
        var Xy = X.values
        basis = FixedEffectBasis.orthogonalize(&Xy, n: n, p: p)
        var yWorking = y
        basis.removeFit(from: &yWorking, workingX: Xy, n: n)
        Xy.append(contentsOf: yWorking)
        var ZtXy = [Double](repeating: 0, count: q * (p + 1))
        Xy.withUnsafeBufferPointer { Xv in
            ZtXy.withUnsafeMutableBufferPointer { out in
                for j in 0..<termCount {
                    let kj = k[j], codesJ = codes[j], Xj = effects[j], layout = layouts[j]
                    for i in 0..<n {
                        let base = layout.start(level: Int(codesJ[i]))
                        for r in 0..<kj {
                            let z = Xj[i + r * n]
                            for c in 0...p { out[base + r + c * q] += z * Xv[i + c * n] }
                        }
                    }
                }
            }
        }
        self.ZtXy = ZtXy
        var XyTXy = [Double](repeating: 0, count: (p + 1) * (p + 1))
        Xy.withUnsafeBufferPointer { A in
            XyTXy.withUnsafeMutableBufferPointer { C in
                BLAS.syrkTransposed(n: n, k: p + 1, alpha: 1, A: A.baseAddress!, lda: n, beta: 0, C: C.baseAddress!, ldc: p + 1)
            }
        }
        self.XyTXy = XyTXy
    }
}
