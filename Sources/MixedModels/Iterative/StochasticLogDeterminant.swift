import Foundation

/// log det A, A = Λ'Z'ZΛ + I, by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017) with
/// the per-level blocks exact:
///
///     log det A = Σ log det Dₗ + tr log Ã,   Ã = L⁻¹AL⁻ᵀ,  D = LL' the per-level blocks,
///
/// and tr log Ã estimated from Rademacher probes z by Lanczos on Ã started at z/‖z‖:
/// z' log(Ã) z ≈ ‖z‖² Σₖ τₖ² log λₖ over the Ritz pairs. Ã has unit diagonal blocks, so
/// tr(Ã − I) = 0 exactly, and z'(Ã − I)z = ‖z‖²(α₁ − 1) — the first Lanczos coefficient — is
/// subtracted from each probe as a control variate: what is left of log Ã − (Ã − I) is of
/// second order in the couplings between factors.
struct StochasticLogDeterminant {
    let probes: Int
    let seed: UInt64
    let maxSteps: Int

    struct Estimate {
        var value: Double
        var standardError: Double
        /// Lanczos steps taken (the largest over the probes).
        var steps: Int
    }

    /// Probes in blocks (``IterativeMixedModel/FitState/blockWidth(q:)``): each probe's Lanczos
    /// recurrence is its own, so blocks give the same values as all at once, with the vectors
    /// of one block held at a time.
    func estimate(model: MixedModelOperator, blocks: LevelBlocks) -> Estimate {
        precondition(!blocks.includeFixed)
        var samples: [Double] = []
        var steps = 0
        let width = IterativeMixedModel.FitState.blockWidth(q: model.q)
        for start in stride(from: 0, to: probes, by: width) {
            let block = start..<min(probes, start + width)
            let (blockSamples, blockSteps) = estimate(model: model, blocks: blocks, probes: block)
            samples += blockSamples
            steps = max(steps, blockSteps)
        }
        return Estimate(value: blocks.logDeterminant + Statistics.mean(samples),
                        standardError: Statistics.standardErrorOfMean(samples), steps: steps)
    }

    /// The samples of probes `range` and the Lanczos steps they took.
    private func estimate(model: MixedModelOperator, blocks: LevelBlocks, probes range: Range<Int>) -> ([Double], Int) {
        let m = range.count, q = model.q
        let previous = Buffer(q * m), current = Buffer(q * m)
        let next = Buffer(q * m), product = Buffer(q * m)
        let scale = Double(q).squareRoot()
        do {
            let z = next    // the probes, in a vector not yet in use
            TraceProbes(count: probes, seed: seed ^ 0xA076_1D64_78BD_642F).fill(probes: range, q: q, dimension: q, into: z.pointer)
            for index in 0..<(q * m) { current[index] = z[index] / scale }
        }
        var alphas = [[Double]](repeating: [], count: m), betas = [[Double]](repeating: [], count: m)
        var active = [Bool](repeating: true, count: m)
        let workspace = OperatorWorkspace(model: model, count: m)
        var steps = 0
        var lastEstimate = [Double](repeating: .nan, count: m)
        while active.contains(true) && steps < maxSteps {
            steps += 1
            // product = L⁻¹ A L⁻ᵀ v
            for index in 0..<(q * m) { next[index] = current[index] }
            blocks.triangularSolve(transposed: true, next.pointer, count: m)
            model.apply(next.pointer, count: m, includeFixed: false, workspace: workspace, into: product.pointer)
            blocks.triangularSolve(transposed: false, product.pointer, count: m)
            var alpha = [Double](repeating: 0, count: m), beta = [Double](repeating: 0, count: m)
            for a in 0..<q { for c in 0..<m { alpha[c] += product[a * m + c] * current[a * m + c] } }
            for c in 0..<m where active[c] {
                let betaPrevious = betas[c].last ?? 0
                for a in 0..<q {
                    product[a * m + c] -= alpha[c] * current[a * m + c] + betaPrevious * previous[a * m + c]
                }
            }
            for a in 0..<q { for c in 0..<m { beta[c] += product[a * m + c] * product[a * m + c] } }
            for c in 0..<m where active[c] {
                alphas[c].append(alpha[c])
                let b = beta[c].squareRoot()
                if b < 1e-12 || steps == maxSteps {
                    active[c] = false
                    continue
                }
                betas[c].append(b)
                if steps % 5 == 0 {
                    let value = Self.quadrature(alphas[c], Array(betas[c].dropLast()))
                    if abs(value - lastEstimate[c]) <= 1e-10 * max(abs(value), 1) { active[c] = false }
                    lastEstimate[c] = value
                }
            }
            for a in 0..<q {
                for c in 0..<m {
                    let b = betas[c].last ?? 1
                    let value = active[c] ? product[a * m + c] / b : 0
                    previous[a * m + c] = current[a * m + c]
                    current[a * m + c] = value
                }
            }
        }
        var samples: [Double] = []
        for c in 0..<m {
            let T = alphas[c], offDiagonal = Array(betas[c].prefix(T.count - 1))
            samples.append(Double(q) * (Self.quadrature(T, offDiagonal) - (T[0] - 1)))
        }
        return (samples, steps)
    }

    /// e₁' log(T) e₁ for the tridiagonal T (diagonal α, off-diagonal β).
    static func quadrature(_ alpha: [Double], _ beta: [Double]) -> Double {
        let (values, first) = TridiagonalEigen.decompose(diagonal: alpha, offDiagonal: beta)
        var sum = 0.0
        for (lambda, tau) in zip(values, first) { sum += tau * tau * log(max(lambda, 1e-300)) }
        return sum
    }
}

/// Eigenvalues of a symmetric tridiagonal matrix and the first component of each eigenvector
/// (the Gauss quadrature weights), by the implicit QL method with Wilkinson shifts (tqli of
/// Numerical Recipes, tracking only the first row of the eigenvector matrix): O(s²).
enum TridiagonalEigen {
    static func decompose(diagonal: [Double], offDiagonal: [Double]) -> (values: [Double], firstComponents: [Double]) {
        let n = diagonal.count
        var d = diagonal
        var e = [Double](repeating: 0, count: n)
        for i in 0..<min(offDiagonal.count, n - 1) { e[i] = offDiagonal[i] }
        var z = [Double](repeating: 0, count: n)   // first row of the eigenvector matrix
        z[0] = 1
        for l in 0..<n {
            var iterations = 0
            while true {
                var m = l
                while m < n - 1 {
                    let dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) <= Double.ulpOfOne * dd { break }
                    m += 1
                }
                if m == l { break }
                iterations += 1
                if iterations > 60 { break }
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = (g * g + 1).squareRoot()
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
                var s = 1.0, c = 1.0, p = 0.0
                var i = m - 1
                var underflow = false
                while i >= l {
                    var f = s * e[i]
                    let b = c * e[i]
                    r = (f * f + g * g).squareRoot()
                    e[i + 1] = r
                    if r == 0 {
                        d[i + 1] -= p
                        e[m] = 0
                        underflow = true
                        break
                    }
                    s = f / r
                    c = g / r
                    g = d[i + 1] - p
                    r = (d[i] - g) * s + 2 * c * b
                    p = s * r
                    d[i + 1] = g + p
                    g = c * r - b
                    f = z[i + 1]
                    z[i + 1] = s * z[i] + c * f
                    z[i] = c * z[i] - s * f
                    i -= 1
                }
                if underflow && i >= l { continue }
                d[l] -= p
                e[l] = g
                e[m] = 0
            }
        }
        return (d, z)
    }
}
