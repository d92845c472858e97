/// The average-information matrix of Gilmour, Thompson and Cullis (1995), "Average
/// Information REML", Biometrics 51: an approximation of the Hessian of the −2 log-likelihood
/// that needs only solves with the current factor, no traces:
///
///     AIₖₗ = (Vₖ P y)' P (Vₗ P y)
///
/// for the parameters θ and σ² of V = σ²(I + ZΛΛ'Z'). `Py = e/σ²` (e the PLS residual) and
/// `P v` is the residual of the PLS fit of the response v, over σ², so each parameter costs one
/// solve. Profiling σ² out leaves the Schur complement `AI_θθ − AI_θσ AI_σσ⁻¹ AI_σθ`, the
/// matrix the Newton steps of ``LinearMixedModel/fitNewton`` use.
enum AverageInformation {
    /// The profiled information matrix (length(θ) × length(θ), column-major) at the θ of the
    /// last `pls.update`. Must run before the factor is overwritten (selected inversion).
    ///
    /// Every working vector is `v = Z w + α e` (α = 0 for θ, 1/σ² for σ²), so everything is
    /// formed in the random effects' space, no vector of length n: with G = Z'Z, z = Z'e,
    /// X̃'e = 0 and e'e = r² − ‖u‖²,
    ///
    ///     Z'v = G w + α z,   X̃'v = (Z'X̃)' w,   vₐ'v꜀ = wₐ'G w꜀ + α꜀ wₐ'z + αₐ w꜀'z + αₐα꜀ e'e,
    ///     vₐ'P v꜀ = (vₐ'v꜀ − (X̃'vₐ)'β̂꜀ − (Z'vₐ)'b̂꜀) / σ²,
    ///
    /// with (β̂꜀, b̂꜀) the PLS fit of v꜀, all of them in one pass of the lower solve. (On 1M
    /// users × items rows the n-length vectors took 80 MB and 0.5–0.66 s per iteration.)
    static func compute(model: LinearMixedModel, criterion: Criterion) throws -> Matrix {
        let pls = model.pls
        let n = pls.n, p = pls.p, q = pls.q
        let design = pls.design
        let G = pls.products.G
        let beta = pls.workingFixedEffects()
        let u = try pls.sphericalEffects()
        let b = pls.applyLambda(u)
        let z = pls.residualCrossProduct(workingBeta: beta, b: b)
        let nu = Double(criterion == .ml ? n : n - p)
        let sigmaSquared = pls.penalizedRSS / nu
        let ee = max(pls.penalizedRSS - u.reduce(0) { $0 + $1 * $1 }, 0)

        // w for each θ: Vₖ P y = Z (DₖΛ' + ΛDₖ') Z'e; then σ²: V_σ P y = (ZΛΛ'z + e)/σ².
        var ws: [[Double]] = []
        let T = pls.templates
        for (j, term) in design.terms.enumerated() {
            let k = term.effectCount
            let layout = design.layouts[j], Tj = layout.templateOffset
            for s in 0..<k {
                for r in s..<k {
                    var w = [Double](repeating: 0, count: q)
                    for l in 0..<term.levelCount {
                        let base = layout.start(level: l)
                        // Dₖ Λ' z: row (l, r) gets (Λ'z)_(l, s).
                        var lambdaTz = 0.0
                        for t in s..<k { lambdaTz += T[Tj + t + s * k] * z[base + t] }
                        w[base + r] += lambdaTz
                        // Λ Dₖ' z: (Dₖ'z)_(l, s) = z_(l, r), then Λ maps column s to rows t ≥ s.
                        for t in s..<k { w[base + t] += T[Tj + t + s * k] * z[base + r] }
                    }
                    ws.append(w)
                }
            }
        }
        ws.append(pls.applyLambda(pls.lambdaTranspose(z)).map { $0 / sigmaSquared })
        let m = ws.count
        let alpha = (0..<m).map { $0 == m - 1 ? 1 / sigmaSquared : 0 }

        // Z'v = G w + α z and X̃'v = (Z'X̃)' w, column by column.
        let ZtX = pls.products.ZtXy
        var Ztv = [Double](repeating: 0, count: q * m), Xtv = [Double](repeating: 0, count: p * m)
        var product = [Double](repeating: 0, count: q)
        var wGw = Matrix(zeros: m, m)
        for a in 0..<m {
            for i in 0..<q { product[i] = 0 }
            ProfiledGradient.symmetricProduct(G: G, owner: design.termOfColumn, design: design, x: ws[a], subtractingInto: &product)
            for i in 0..<q { Ztv[i + a * q] = -product[i] + alpha[a] * z[i] }
            for c in 0...a { wGw[a, c] = -dot(ws[c], product) }
            for c in 0..<p {
                var sum = 0.0
                for i in 0..<q { sum += ZtX[i + c * q] * ws[a][i] }
                Xtv[c + a * p] = sum
            }
        }
        let fits = try pls.solveWorking(Ztv: Ztv, Xtv: Xtv, count: m)
        var AI = Matrix(zeros: m, m)
        for a in 0..<m {
            let wz = dot(ws[a], z)
            for c in 0...a {
                var value = wGw[a, c] + alpha[c] * wz + alpha[a] * dot(ws[c], z) + alpha[a] * alpha[c] * ee
                for d in 0..<p { value -= Xtv[d + a * p] * fits.beta[d + c * p] }
                for i in 0..<q { value -= Ztv[i + a * q] * fits.b[i + c * q] }
                AI[a, c] = value / sigmaSquared
                AI[c, a] = AI[a, c]
            }
        }
        // Profile σ² out.
        let k = m - 1
        var H = Matrix(zeros: k, k)
        let sigmaSigma = AI[k, k]
        for a in 0..<k {
            for c in 0..<k {
                H[a, c] = AI[a, c] - (sigmaSigma > 0 ? AI[a, k] * AI[k, c] / sigmaSigma : 0)
            }
        }
        return H
    }

    private static func dot(_ x: [Double], _ y: [Double]) -> Double {
        x.withUnsafeBufferPointer { a in y.withUnsafeBufferPointer { b in dotProduct(a.baseAddress!, b.baseAddress!, a.count) } }
    }
}
