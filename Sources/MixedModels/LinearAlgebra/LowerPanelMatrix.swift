import Foundation

/// The lower triangle of an n × n matrix (symmetric, or a Cholesky factor), held in column
/// panels: panel p holds columns `p·w ..< (p+1)·w` from their diagonal row down, column-major
/// with leading dimension `n − p·w`. The strict upper triangle is not stored (but for the
/// w × w diagonal blocks' upper halves): n(n + w)/2 values instead of n².
///
/// The blocked engine's dense Schur complement lives here. Full storage left the upper half's
/// pages untouched, so they held no memory — unless the kernel backs the allocation with
/// transparent huge pages (`enabled` = `always`, the default of several distributions), when
/// every 2 MB page touched by the lower triangle brings in the upper entries beside it and the
/// whole n² is resident (3.2 GB at 20,000 columns). With one panel (w = n) the layout is plain
/// column-major n × n, and every operation below is the one LAPACK call it replaces.
///
/// Factorization, triangular inverse and solves are blocked by panels onto level-3 BLAS
/// (`dpotrf`/`dtrtri` on the diagonal blocks, `dtrsm`, `dtrmm` and `dgemm` off them).
package final class LowerPanelMatrix {
    /// Order of the matrix.
    let n: Int
    /// Columns per panel (the last panel may be narrower).
    let width: Int
    /// Panels.
    let panelCount: Int
    /// Storage offset of each panel's first value (its diagonal entry), then ``storedCount``.
    private let offsets: [Int]
    /// Values held.
    package let storedCount: Int
    private let base: UnsafeMutablePointer<Double>

    /// Values held for an n × n lower triangle in panels of `width` columns:
    /// n(n + w)/2 when w divides n (n² for one panel), or `Int.max` when that overflows.
    package static func storedCount(n: Int, width: Int) -> Int {
        panelOffsets(n: n, width: width)?.last ?? .max
    }

    /// Where each panel starts in the storage, then the values held in all (nil on overflow).
    private static func panelOffsets(n: Int, width: Int) -> [Int]? {
        let w = min(max(width, 1), max(n, 1))
        var offsets = [0]
        for p0 in stride(from: 0, to: n, by: w) {
            let (size, overflow) = (n - p0).multipliedReportingOverflow(by: min(w, n - p0))
            if overflow || offsets.last! > Int.max - size { return nil }
            offsets.append(offsets.last! + size)
        }
        return offsets
    }

    /// Zeroed storage for an n × n lower triangle in panels of `width` columns (`width ≥ n`: one
    /// panel, the full column-major square).
    /// - Throws: ``InsufficientMemory`` when the storage cannot be had.
    package init(n: Int, width: Int, for what: String = "a dense triangular matrix") throws {
        precondition(n >= 0 && width >= 1)
        self.n = n
        self.width = min(width, max(n, 1))
        panelCount = n == 0 ? 0 : (n + self.width - 1) / self.width
        let offsets = Self.panelOffsets(n: n, width: width)
        self.offsets = offsets ?? []
        storedCount = offsets?.last ?? .max
        // calloc: large blocks are fresh zero pages, touched only where written.
        guard storedCount < .max, let memory = calloc(max(storedCount, 1), MemoryLayout<Double>.stride) else {
            throw InsufficientMemory(needed: storedCount < .max / 8 ? 8 * storedCount : .max,
                                     available: MemoryBudget.available() ?? 0, what: what)
        }
        base = memory.bindMemory(to: Double.self, capacity: max(storedCount, 1))
    }

    deinit { free(base) }

    /// Whether the matrix is one panel: the full n × n column-major square at ``square``.
    var isSquare: Bool { panelCount <= 1 }

    /// The full column-major n × n storage (leading dimension n); only when ``isSquare``.
    var square: UnsafeMutablePointer<Double> {
        precondition(isSquare, "the matrix is held in panels")
        return base
    }

    /// First column of panel p, its width and leading dimension.
    @inline(__always) func panel(_ p: Int) -> (start: Int, columns: Int, ld: Int) {
        let p0 = p * width
        return (p0, min(width, n - p0), n - p0)
    }

    /// Column j, indexed by row: `column(j)[i]` is entry (i, j) for rows i ≥ j (rows from the
    /// first column of j's panel are addressable; only i ≥ j are meaningful).
    @inline(__always) package func column(_ j: Int) -> UnsafeMutablePointer<Double> {
        let p = j / width, p0 = p * width
        return base + offsets[p] + (j - p0) * (n - p0) - p0
    }

    /// Entry (i, j) of the symmetric matrix (either triangle asked).
    @inline(__always) func symmetricEntry(_ i: Int, _ j: Int) -> Double {
        i >= j ? column(j)[i] : column(i)[j]
    }

    /// The diagonal block of panel p: its first entry, in storage of leading dimension `ld`.
    @inline(__always) private func diagonalBlock(_ p: Int) -> UnsafeMutablePointer<Double> { base + offsets[p] }

    /// Sets the lower triangle to zero.
    func zeroLower() {
        for j in 0..<n { (column(j) + j).update(repeating: 0, count: n - j) }
    }

    /// Cholesky factorization in place (L L' of the lower triangle), right-looking by panels.
    /// Returns LAPACK's `info`: 0, or the order of the first leading minor that is not positive.
    package func factorCholesky() -> Int {
        for p in 0..<panelCount {
            let (p0, w, ld) = panel(p)
            let D = diagonalBlock(p)
            let info = BLAS.potrfLower(n: w, A: D, lda: ld)
            if info != 0 { return p0 + info }
            let below = ld - w
            if below == 0 { continue }
            // L₂₁ = A₂₁ L₁₁⁻ᵀ, then every later panel q: A_q −= L_{q:,p} L_{q,p}'.
            BLAS.trsmLower(left: false, transposed: true, m: below, n: w, alpha: 1, L: D, ldl: ld, B: D + w, ldb: ld)
            for q in (p + 1)..<panelCount {
                let (q0, wq, ldq) = panel(q)
                let Lq = D + (q0 - p0)
                BLAS.gemm(transA: false, transB: true, m: ldq, n: wq, k: w, alpha: -1, A: Lq, lda: ld,
                          B: Lq, ldb: ld, beta: 1, C: diagonalBlock(q), ldc: ldq)
            }
        }
        return 0
    }

    /// Inverse of the lower-triangular matrix in place (LAPACK's `dtrtri` by panels, last
    /// first): with the panels after p already inverted (X₂₂ = L₂₂⁻¹),
    /// `X₂₁ = −X₂₂ L₂₁ L₁₁⁻¹`, then `X₁₁ = L₁₁⁻¹`. Returns LAPACK's `info`.
    @discardableResult
    package func invertTriangular() -> Int {
        for p in stride(from: panelCount - 1, through: 0, by: -1) {
            let (p0, w, ld) = panel(p)
            let D = diagonalBlock(p)
            if ld > w {
                // B = L₂₁ (rows below the block) ← X₂₂ B, row block by row block from the last:
                // rows of panel s ← X_ss B_s plus, into the rows below s, X_{>s,s} B_s, each
                // read before it is overwritten.
                for s in stride(from: panelCount - 1, to: p, by: -1) {
                    let (s0, ws, lds) = panel(s)
                    let Bs = D + (s0 - p0)
                    let Xs = diagonalBlock(s)
                    if lds > ws {
                        BLAS.gemm(transA: false, transB: false, m: lds - ws, n: w, k: ws, alpha: 1, A: Xs + ws, lda: lds,
                                  B: Bs, ldb: ld, beta: 1, C: Bs + ws, ldc: ld)
                    }
                    BLAS.trmmLeftLower(m: ws, n: w, L: Xs, ldl: lds, B: Bs, ldb: ld)
                }
                BLAS.trsmLower(left: false, transposed: false, m: ld - w, n: w, alpha: -1, L: D, ldl: ld, B: D + w, ldb: ld)
            }
            let info = BLAS.trtriLower(n: w, A: D, lda: ld)
            if info != 0 { return p0 + info }
        }
        return 0
    }

    /// B ← L⁻¹B for the factor L held here (B n × `columns`, leading dimension `ldb`).
    func solveLower(_ B: UnsafeMutablePointer<Double>, columns: Int, ldb: Int) {
        for p in 0..<panelCount {
            let (p0, w, ld) = panel(p)
            let D = diagonalBlock(p)
            BLAS.trsmLower(left: true, transposed: false, m: w, n: columns, alpha: 1, L: D, ldl: ld, B: B + p0, ldb: ldb)
            if ld > w {
                BLAS.gemm(transA: false, transB: false, m: ld - w, n: columns, k: w, alpha: -1, A: D + w, lda: ld,
                          B: B + p0, ldb: ldb, beta: 1, C: B + p0 + w, ldc: ldb)
            }
        }
    }

    /// x ← L'⁻¹x for the factor L held here.
    func solveLowerTransposed(_ x: UnsafeMutablePointer<Double>) {
        for p in stride(from: panelCount - 1, through: 0, by: -1) {
            let (p0, w, ld) = panel(p)
            let D = diagonalBlock(p)
            if ld > w {
                BLAS.gemv(transposed: true, m: ld - w, n: w, alpha: -1, A: D + w, lda: ld, x: x + p0 + w, beta: 1, y: x + p0)
            }
            BLAS.trsvLowerTransposed(n: w, L: D, ldl: ld, x: x + p0)
        }
    }
}
