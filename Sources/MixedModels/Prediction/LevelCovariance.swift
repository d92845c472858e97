/// The blocks of the joint conditional covariance `C = Cov(b̂ − b, β̂ − β)` (``JointCovariance``)
/// that a conditional prediction interval needs when the model has one random term: for each
/// level l, `C_bb(l)` (k × k) and `C_bβ(l)` (k × p); with `vcov(β̂)` they give `v'Cv` for a row
/// of that level. O(levels · k · (k + p)) numbers instead of the dense (q + p)², so models of
/// any size get conditional intervals.
///
/// With one term the `u` block of `A` (``JointCovariance``) is block diagonal, `Dₗ = Σᵢ wᵢwᵢ' + I`
/// (`wᵢ = T'zᵢ` over the rows of level l), `Bₗ = Σᵢ wᵢxᵢ'`; with the Schur complement
/// `S = X'X − Σₗ Bₗ'Dₗ⁻¹Bₗ`:
///
///     (A⁻¹)ᵤᵤ(l) = Dₗ⁻¹ + Dₗ⁻¹BₗS⁻¹Bₗ'Dₗ⁻¹,   (A⁻¹)ᵤβ(l) = −Dₗ⁻¹BₗS⁻¹,
///
/// and `C_bb(l) = σ²T(A⁻¹)ᵤᵤ(l)T'`, `C_bβ(l) = σ²T(A⁻¹)ᵤβ(l)`.
struct LevelCovariance: Sendable, Equatable {
    /// Effects per level (k) and fixed effects (p).
    let k: Int
    let p: Int
    /// `C_bb(l)`, k × k column by column, level after level.
    let bb: [Double]
    /// `C_bβ(l)`, k × p column by column, level after level.
    let bBeta: [Double]

    /// Entry (r, s) of `C_bb` of level l.
    func bb(_ level: Int, _ r: Int, _ s: Int) -> Double { bb[level * k * k + r + s * k] }
    /// Entry (r, c) of `C_bβ` of level l.
    func bBeta(_ level: Int, _ r: Int, _ c: Int) -> Double { bBeta[level * k * p + r + c * k] }

    init(k: Int, p: Int, bb: [Double], bBeta: [Double]) {
        self.k = k
        self.p = p
        self.bb = bb
        self.bBeta = bBeta
    }

    /// The blocks of a fit with exactly one random term; nil otherwise or when a block is not
    /// positive definite.
    init?(frame: ModelFrame, parameters: CovarianceParameters, theta: [Double], sigmaSquared: Double) {
        guard frame.randomTerms.count == 1 else { return nil }
        let term = frame.randomTerms[0]
        let n = frame.n, p = frame.X.columns, k = term.effectCount, levels = term.levelCount
        let T = parameters.template(0, theta: theta)
        var D = [Double](repeating: 0, count: levels * k * k)
        var B = [Double](repeating: 0, count: levels * k * p)
        var XtX = [Double](repeating: 0, count: p * p)
        var w = [Double](repeating: 0, count: k)
        for i in 0..<n {
            let l = Int(term.codes[i])
            for r in 0..<k {
                var sum = 0.0
                for c in r..<k { sum += T[c, r] * term.effects.values[c * n + i] }
                w[r] = sum
            }
            for s in 0..<k { for r in 0..<k { D[l * k * k + r + s * k] += w[r] * w[s] } }
            for c in 0..<p {
                let x = frame.X.values[c * n + i]
                for r in 0..<k { B[l * k * p + r + c * k] += w[r] * x }
                for a in 0..<p { XtX[a + c * p] += frame.X.values[a * n + i] * x }
            }
        }
        // Dₗ⁻¹ in place, then G = Dₗ⁻¹Bₗ, and S = X'X − Σ Bₗ'G.
        var G = [Double](repeating: 0, count: levels * k * p)
        var S = XtX
        for l in 0..<levels {
            let base = l * k * k
            for d in 0..<k { D[base + d + d * k] += 1 }
            let ok = D.withUnsafeMutableBufferPointer { d -> Bool in
                BLAS.potrfLower(n: k, A: d.baseAddress! + base, lda: k) == 0 && BLAS.potriLower(n: k, A: d.baseAddress! + base, lda: k) == 0
            }
            guard ok else { return nil }
            for s in 0..<k { for r in 0..<s { D[base + r + s * k] = D[base + s + r * k] } }
            for c in 0..<p {
                for r in 0..<k {
                    var sum = 0.0
                    for t in 0..<k { sum += D[base + r + t * k] * B[l * k * p + t + c * k] }
                    G[l * k * p + r + c * k] = sum
                }
            }
            for c in 0..<p {
                for a in 0..<p {
                    var sum = 0.0
                    for r in 0..<k { sum += B[l * k * p + r + a * k] * G[l * k * p + r + c * k] }
                    S[a + c * p] -= sum
                }
            }
        }
        let ok = S.withUnsafeMutableBufferPointer { s -> Bool in
            BLAS.potrfLower(n: p, A: s.baseAddress!, lda: p) == 0 && BLAS.potriLower(n: p, A: s.baseAddress!, lda: p) == 0
        }
        guard ok || p == 0 else { return nil }
        for c in 0..<p { for r in 0..<c { S[r + c * p] = S[c + r * p] } }

        var bb = [Double](repeating: 0, count: levels * k * k)
        var bBeta = [Double](repeating: 0, count: levels * k * p)
        var H = [Double](repeating: 0, count: k * p)        // GS⁻¹ = Dₗ⁻¹BₗS⁻¹
        var uu = [Double](repeating: 0, count: k * k)
        var Tu = [Double](repeating: 0, count: k * max(k, p))
        for l in 0..<levels {
            for c in 0..<p {
                for r in 0..<k {
                    var sum = 0.0
                    for a in 0..<p { sum += G[l * k * p + r + a * k] * S[a + c * p] }
                    H[r + c * k] = sum
                }
            }
            for s in 0..<k {
                for r in 0..<k {
                    var sum = D[l * k * k + r + s * k]
                    for c in 0..<p { sum += H[r + c * k] * G[l * k * p + s + c * k] }
                    uu[r + s * k] = sum
                }
            }
            // C_bb = σ² T uu T' (T lower triangular).
            for s in 0..<k {
                for r in 0..<k {
                    var sum = 0.0
                    for t in 0...r { sum += T[r, t] * uu[t + s * k] }
                    Tu[r + s * k] = sum
                }
            }
            for s in 0..<k {
                for r in 0..<k {
                    var sum = 0.0
                    for t in 0...s { sum += Tu[r + t * k] * T[s, t] }
                    bb[l * k * k + r + s * k] = sigmaSquared * sum
                }
            }
            // C_bβ = −σ² T H.
            for c in 0..<p {
                for r in 0..<k {
                    var sum = 0.0
                    for t in 0...r { sum += T[r, t] * H[t + c * k] }
                    bBeta[l * k * p + r + c * k] = -sigmaSquared * sum
                }
            }
        }
        self.init(k: k, p: p, bb: bb, bBeta: bBeta)
    }
}
