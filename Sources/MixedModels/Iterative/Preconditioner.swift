import Foundation

/// An approximation M of H (or A) whose solves are cheap: z ← M⁻¹r for m right-hand sides
/// (coordinate-major, as ``MixedModelOperator`` stores vectors). M must be symmetric positive
/// definite for conjugate gradients.
protocol Preconditioner: AnyObject {
    func apply(_ r: UnsafePointer<Double>, count m: Int, into z: UnsafeMutablePointer<Double>)
}

/// The preconditioners of the iterative method.
public enum PreconditionerKind: String, Sendable, CaseIterable {
    /// The per-level diagonal blocks of H: `Tⱼ'Zₗ'ZₗTⱼ + I` for each level, and X'X.
    case blockJacobi = "block-jacobi"
    /// One symmetric block Gauss–Seidel sweep over the factors (and the fixed effects), each
    /// factor's block solved exactly — backfitting (Ghosh, Hastie & Owen 2022) as a preconditioner.
    case gaussSeidel = "gauss-seidel"
}

/// The diagonal blocks of H, Cholesky-factored: one k × k block per level of each term,
/// `Tⱼ'(Σᵢ eᵢeᵢ')Tⱼ + I`, and X'X for the fixed effects (when they are part of the system).
final class LevelBlocks {
    let model: MixedModelOperator
    let includeFixed: Bool
    /// Per term: the lower Cholesky factors, k × k per level.
    private(set) var factors: [[Double]]
    /// Cholesky factor of X'X (p × p), when included.
    private(set) var fixedFactor: [Double]
    /// Per term: the inverses of the blocks, k × k per level (what the preconditioner applies).
    private(set) var inverses: [[Double]]
    /// Σ over all blocks of log det.
    private(set) var logDeterminant = 0.0

    init(model: MixedModelOperator, includeFixed: Bool) {
        self.model = model
        self.includeFixed = includeFixed
        factors = model.terms.map { [Double](repeating: 0, count: $0.levelCount * $0.k * $0.k) }
        inverses = factors
        fixedFactor = model.XtX
        if includeFixed && model.p > 0 {
            let p = model.p
            let info = fixedFactor.withUnsafeMutableBufferPointer { BLAS.potrfLower(n: p, A: $0.baseAddress!, lda: p) }
            precondition(info == 0, "X'X is positive definite for a full-rank X")
        }
        update()
    }

    /// Refactors the blocks for the operator's current Λ.
    func update() {
        var logDet = 0.0
        for (j, term) in model.terms.enumerated() {
            let k = term.k
            let T = model.templates[j]
            factors[j].withUnsafeMutableBufferPointer { F in
                var TG = [Double](repeating: 0, count: k * k)
                for l in 0..<term.levelCount {
                    let G = l * k * k
                    // T'GT + I
                    for s in 0..<k {
                        for a in 0..<k {
                            var sum = 0.0
                            for c in 0..<k { sum += term.gram[G + a + c * k] * T[c + s * k] }
                            TG[a + s * k] = sum
                        }
                    }
                    for s in 0..<k {
                        for r in 0..<k {
                            var sum = r == s ? 1.0 : 0.0
                            for a in 0..<k { sum += T[a + r * k] * TG[a + s * k] }
                            F[G + r + s * k] = sum
                        }
                    }
                    let ok = SmallCholesky.factorInPlace(F.baseAddress! + G, k)
                    precondition(ok, "T'GT + I is positive definite")
                    for a in 0..<k { logDet += 2 * log(F[G + a + a * k]) }
                }
            }
            let factor = factors[j]
            inverses[j].withUnsafeMutableBufferPointer { S in
                factor.withUnsafeBufferPointer { F in
                    for l in 0..<term.levelCount {
                        let L = F.baseAddress! + l * k * k, inverse = S.baseAddress! + l * k * k
                        for c in 0..<k {
                            for a in 0..<k { inverse[a + c * k] = a == c ? 1 : 0 }
                            SmallCholesky.solveLower(L, k, inverse + c * k)
                            SmallCholesky.solveUpper(L, k, inverse + c * k)
                        }
                    }
                }
            }
        }
        if includeFixed { for t in 0..<model.p { logDet += 2 * log(fixedFactor[t + t * model.p]) } }
        logDeterminant = logDet
    }

    /// z ← D_j⁻¹ r on term j's coordinates (`block == terms.count`: the fixed effects); z may
    /// be r (each level's entries are read before its results are written).
    func solve(block: Int, _ r: UnsafePointer<Double>, count m: Int, into z: UnsafeMutablePointer<Double>) {
        if block == model.terms.count {
            let p = model.p
            let base = model.q * m
            fixedFactor.withUnsafeBufferPointer { L in
                var x = [Double](repeating: 0, count: p)
                for c in 0..<m {
                    for t in 0..<p { x[t] = r[base + t * m + c] }
                    x.withUnsafeMutableBufferPointer { x in
                        SmallCholesky.solveLower(L.baseAddress!, p, x.baseAddress!)
                        SmallCholesky.solveUpper(L.baseAddress!, p, x.baseAddress!)
                    }
                    for t in 0..<p { z[base + t * m + c] = x[t] }
                }
            }
            return
        }
        let term = model.terms[block]
        let k = term.k
        nonisolated(unsafe) let r = r, z = z
        inverses[block].withUnsafeBufferPointer { S in
            nonisolated(unsafe) let S = S.baseAddress!
            let chunks = (term.levelCount + MixedModelOperator.levelChunk - 1) / MixedModelOperator.levelChunk
            Parallel.forEach(chunks, concurrent: chunks > 1 && m > 1, threads: model.threads) { chunk in
                let start = chunk * MixedModelOperator.levelChunk
                let end = min(term.levelCount, start + MixedModelOperator.levelChunk)
                for l in start..<end {
                    let base = term.layout.start(level: l)
                    let inverse = S + l * k * k
                    switch k {
                    case 1:
                        let d = inverse[0]
                        for c in 0..<m { z[base * m + c] = d * r[base * m + c] }
                    case 2:
                        let s00 = inverse[0], s10 = inverse[1], s11 = inverse[3]
                        for c in 0..<m {
                            let r0 = r[base * m + c], r1 = r[(base + 1) * m + c]
                            z[base * m + c] = s00 * r0 + s10 * r1
                            z[(base + 1) * m + c] = s10 * r0 + s11 * r1
                        }
                    default:
                        // The level's entries are read before any is written: z may be r.
                        withUnsafeTemporaryAllocation(of: Double.self, capacity: k) { level in
                            for c in 0..<m {
                                for b in 0..<k { level[b] = r[(base + b) * m + c] }
                                for a in 0..<k {
                                    var sum = 0.0
                                    for b in 0..<k { sum += inverse[a + b * k] * level[b] }
                                    z[(base + a) * m + c] = sum
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// For term j: Σₗ Tⱼ Dⱼₗ⁻¹ Tⱼ' (k × k column-major), the blocks Dⱼₗ⁻¹ of every level
    /// (k × k each), and Σₗ tr(Dⱼₗ⁻¹).
    func summedInverse(term j: Int) -> (sum: [Double], inverses: [Double], trace: Double) {
        let term = model.terms[j]
        let k = term.k
        let T = model.templates[j]
        var sum = [Double](repeating: 0, count: k * k)
        var inverses = [Double](repeating: 0, count: term.levelCount * k * k)
        var trace = 0.0
        factors[j].withUnsafeBufferPointer { F in
            inverses.withUnsafeMutableBufferPointer { S in
                for l in 0..<term.levelCount {
                    let L = F.baseAddress! + l * k * k
                    let inverse = S.baseAddress! + l * k * k
                    for c in 0..<k {
                        inverse[c + c * k] = 1
                        SmallCholesky.solveLower(L, k, inverse + c * k)
                        SmallCholesky.solveUpper(L, k, inverse + c * k)
                    }
                    for a in 0..<k { trace += inverse[a + a * k] }
                    for s in 0..<k {
                        for r in 0..<k {
                            var value = 0.0
                            for a in 0...r { for c in 0...s { value += T[r + a * k] * inverse[a + c * k] * T[s + c * k] } }
                            sum[r + s * k] += value
                        }
                    }
                }
            }
        }
        return (sum, inverses, trace)
    }

    /// v ← L⁻¹v (or L⁻ᵀv) on the u coordinates, with LL' the per-level blocks.
    func triangularSolve(transposed: Bool, _ v: UnsafeMutablePointer<Double>, count m: Int) {
        for (j, term) in model.terms.enumerated() {
            let k = term.k
            factors[j].withUnsafeBufferPointer { F in
                var x = [Double](repeating: 0, count: k)
                for l in 0..<term.levelCount {
                    let base = term.layout.start(level: l)
                    let L = F.baseAddress! + l * k * k
                    for c in 0..<m {
                        for a in 0..<k { x[a] = v[(base + a) * m + c] }
                        x.withUnsafeMutableBufferPointer { x in
                            if transposed { SmallCholesky.solveUpper(L, k, x.baseAddress!) } else { SmallCholesky.solveLower(L, k, x.baseAddress!) }
                        }
                        for a in 0..<k { v[(base + a) * m + c] = x[a] }
                    }
                }
            }
        }
    }
}

/// Block Jacobi: z ← D⁻¹r with D the per-level blocks.
final class BlockJacobiPreconditioner: Preconditioner {
    let blocks: LevelBlocks

    init(blocks: LevelBlocks) { self.blocks = blocks }

    func apply(_ r: UnsafePointer<Double>, count m: Int, into z: UnsafeMutablePointer<Double>) {
        let model = blocks.model
        for j in model.terms.indices { blocks.solve(block: j, r, count: m, into: z) }
        if blocks.includeFixed && model.p > 0 { blocks.solve(block: model.terms.count, r, count: m, into: z) }
    }
}
