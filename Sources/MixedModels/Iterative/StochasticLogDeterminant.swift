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

    func estimate(model: MixedModelOperator, blocks: LevelBlocks) -> Estimate {
        precondition(!blocks.includeFixed)
        let m = probes, q = model.q
        let z = Buffer(q * m)
        TraceProbes(count: m, seed: seed ^ 0xA076_1D64_78BD_642F).fill(q: q, dimension: q, into: z.pointer)
        let previous = Buffer(q * m), current = Buffer(q * m)
        let next = Buffer(q * m), product = Buffer(q * m)
        let scale = Double(q).squareRoot()
        for index in 0..<(q * m) { current[index] = z[index] / scale }
        var alphas = [[Double]](repeating: [], count: m), betas = [[Double]](repeating: [], count: m)
        var active = [Bool](repeating: true, count: m)
        let workspace = OperatorWorkspace(n: model.n, q: q, count: m)
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
        return Estimate(value: blocks.logDeterminant + Statistics.mean(samples),
                        standardError: Statistics.standardErrorOfMean(samples), steps: steps)
    }

    /// e₁' log(T) e₁ for the tridiagonal T (diagonal α, off-diagonal β).
    static func quadrature(_ alpha: [Double], _ beta: [Double]) -> Double {
        let s = alpha.count
        var T = Matrix(zeros: s, s)
        for i in 0..<s { T[i, i] = alpha[i] }
        for i in 0..<min(beta.count, s - 1) { T[i, i + 1] = beta[i]; T[i + 1, i] = beta[i] }
        let (values, first) = SymmetricEigen.decompose(T)
        var sum = 0.0
        for (lambda, tau) in zip(values, first) { sum += tau * tau * log(max(lambda, 1e-300)) }
        return sum
    }
}

/// Eigenvalues of a small symmetric matrix and the first component of each eigenvector, by
/// cyclic Jacobi rotations.
enum SymmetricEigen {
    static func decompose(_ M: Matrix) -> (values: [Double], firstComponents: [Double]) {
        var A = M
        let k = A.rows
        var first = [Double](repeating: 0, count: k)   // e₁'Q
        first[0] = 1
        for _ in 0..<100 {
            var off = 0.0, total = 0.0
            for r in 0..<k { for s in 0..<k { total += A[r, s] * A[r, s]; if r != s { off += A[r, s] * A[r, s] } } }
            if off <= 1e-30 * max(total, 1e-300) { break }
            for p in 0..<k {
                for q in (p + 1)..<k where A[p, q] != 0 {
                    let theta = (A[q, q] - A[p, p]) / (2 * A[p, q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for r in 0..<k {
                        let a = A[r, p], b = A[r, q]
                        A[r, p] = c * a - s * b
                        A[r, q] = s * a + c * b
                    }
                    for r in 0..<k {
                        let a = A[p, r], b = A[q, r]
                        A[p, r] = c * a - s * b
                        A[q, r] = s * a + c * b
                    }
                    let a = first[p], b = first[q]
                    first[p] = c * a - s * b
                    first[q] = s * a + c * b
                }
            }
        }
        return ((0..<k).map { A[$0, $0] }, first)
    }
}
