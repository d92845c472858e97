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
    static func compute(model: LinearMixedModel, criterion: Criterion) throws -> Matrix {
        let pls = model.pls
        let frame = model.frame
        let n = frame.n, p = frame.X.columns, q = pls.q
        let design = pls.design
        let beta = pls.fixedEffects()
        let u = try pls.sphericalEffects()
        let b = pls.applyLambda(u)
        let e = residual(model: model, response: frame.y, beta: beta, b: b)
        let z = Sparse.transposeProduct(design.Z, e)
        let nu = Double(criterion == .ml ? n : n - p)
        let sigmaSquared = pls.penalizedRSS / nu

        // Working vectors Vₖ P y = Z (DₖΛ' + ΛDₖ') Z'e, and V_σ P y = (e + ZΛΛ'Z'e)/σ².
        var vectors: [[Double]] = []
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
                    vectors.append(Sparse.product(design.Z, w))
                }
            }
        }
        let lambdaLambdaTz = pls.applyLambda(pls.lambdaTranspose(z))
        var sigmaVector = Sparse.product(design.Z, lambdaLambdaTz)
        for i in 0..<n { sigmaVector[i] = (sigmaVector[i] + e[i]) / sigmaSquared }
        vectors.append(sigmaVector)

        // P vₗ = (vₗ − X β̂ᵥ − Z b̂ᵥ) / σ².
        var projected: [[Double]] = []
        for v in vectors {
            var Xtv = [Double](repeating: 0, count: p)
            for c in 0..<p {
                var s = 0.0
                for i in 0..<n { s += frame.X.values[i + c * n] * v[i] }
                Xtv[c] = s
            }
            let fit = try pls.solve(Ztv: Sparse.transposeProduct(design.Z, v), Xtv: Xtv)
            var r = residual(model: model, response: v, beta: fit.beta, b: fit.b)
            for i in 0..<n { r[i] /= sigmaSquared }
            projected.append(r)
        }
        let m = vectors.count
        var AI = Matrix(zeros: m, m)
        for a in 0..<m {
            for c in 0...a {
                var s = 0.0
                for i in 0..<n { s += vectors[a][i] * projected[c][i] }
                AI[a, c] = s
                AI[c, a] = s
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

    /// v − Xβ − Zb.
    static func residual(model: LinearMixedModel, response: [Double], beta: [Double], b: [Double]) -> [Double] {
        var r = response
        let n = model.frame.n
        for (c, value) in beta.enumerated() where value != 0 {
            for i in 0..<n { r[i] -= model.frame.X.values[i + c * n] * value }
        }
        let Zb = Sparse.product(model.pls.design.Z, b)
        for i in 0..<n { r[i] -= Zb[i] }
        return r
    }
}

/// Products with a CHOLMOD compressed-column matrix.
enum Sparse {
    /// Z v (Z is rows × columns, v of length columns).
    static func product(_ Z: CholmodSparse, _ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: Z.rowCount)
        let colptr = Z.columnPointers, rows = Z.rowIndices, values = Z.values
        for c in 0..<Z.columnCount where v[c] != 0 {
            let x = v[c]
            for index in Int(colptr[c])..<Int(colptr[c + 1]) { out[Int(rows[index])] += values[index] * x }
        }
        return out
    }

    /// Z'v (v of length rows).
    static func transposeProduct(_ Z: CholmodSparse, _ v: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: Z.columnCount)
        let colptr = Z.columnPointers, rows = Z.rowIndices, values = Z.values
        for c in 0..<Z.columnCount {
            var s = 0.0
            for index in Int(colptr[c])..<Int(colptr[c + 1]) { s += values[index] * v[Int(rows[index])] }
            out[c] = s
        }
        return out
    }
}
