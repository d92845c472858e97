import Foundation

/// One update of the variance components from the current predictions b (and, for the
/// evidence and EM forms, the posterior covariances): each term's block on its own — the
/// terms are independent given b and C, so they are updated concurrently.
struct MacKayUpdate {
    let form: MacKayForm
    let fullCovariance: Bool
    let design: RandomEffectsDesign
    let b: [Double]
    let sse: Double
    let n: Int
    let p: Int
    let sigmaSquared: Double
    let covariances: [Matrix]
    let posterior: PosteriorCovariance?
    /// REML: the posterior of (β, b) (σ² on n − p − Σγ); ML: of b given β̂ (σ² on n − Σγ).
    var criterion: Criterion = .reml

    /// New covariance blocks and σ².
    func run(concurrent: Bool) -> ([Matrix], Double) {
        let count = design.terms.count
        var results = [Matrix](repeating: Matrix(zeros: 0, 0), count: count)
        var gammas = [Double](repeating: 0, count: count)
        results.withUnsafeMutableBufferPointer { out in
            gammas.withUnsafeMutableBufferPointer { gammaOut in
                // Each iteration writes only its own slots.
                nonisolated(unsafe) let out = out, gammaOut = gammaOut
                let body = { (j: Int) in
                    let (V, gamma) = self.updateTerm(j)
                    out[j] = V
                    gammaOut[j] = gamma
                }
                Parallel.forEach(count, concurrent: concurrent, body)
            }
        }
        let newSigmaSquared: Double
        switch form {
        case .quick: newSigmaSquared = sse / Double(n)
        case .evidence: newSigmaSquared = sse / (Double(criterion == .reml ? n - p : n) - gammas.reduce(0, +))
        case .em: newSigmaSquared = (sse + (posterior?.residualTrace ?? 0)) / Double(n)
        }
        return (results, newSigmaSquared)
    }

    /// The new block of term j, and its Σγ (evidence form).
    private func updateTerm(_ j: Int) -> (Matrix, Double) {
        let term = design.terms[j]
        let k = term.effectCount
        let levels = Double(term.levelCount)
        // B'B: the predictions of this term, level by level.
        var gram = Matrix(zeros: k, k)
        let layout = design.layouts[j]
        for l in 0..<term.levelCount {
            let base = layout.start(level: l)
            for s in 0..<k { for r in 0..<k { gram[r, s] += b[base + r] * b[base + s] } }
        }
        var V = Matrix(zeros: k, k)
        var gammaSum = 0.0
        switch form {
        case .quick:
            for s in 0..<k {
                for r in 0..<k where fullCovariance || r == s { V[r, s] = gram[r, s] / levels }
            }
        case .evidence:
            let summed = posterior!.summedBlocks[j]
            for t in 0..<k {
                let prior = covariances[j][t, t]
                let gamma = prior > 0 ? levels - summed[t + t * k] / prior : 0
                gammaSum += gamma
                V[t, t] = gamma > 0 ? gram[t, t] / gamma : 0
            }
        case .em:
            let summed = posterior!.summedBlocks[j]
            for s in 0..<k { for r in 0..<k { V[r, s] = (gram[r, s] + summed[r + s * k]) / levels } }
        }
        return (V, gammaSum)
    }
}

/// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations.
enum SymmetricEigenvalues {
    static func of(_ M: Matrix) -> [Double] {
        var A = M
        let k = A.rows
        for _ in 0..<50 {
            var off = 0.0
            for r in 0..<k { for s in 0..<k where r != s { off += A[r, s] * A[r, s] } }
            if off < 1e-30 * max(1e-300, A.values.reduce(0) { $0 + $1 * $1 }) { break }
            for pIndex in 0..<k {
                for qIndex in (pIndex + 1)..<k where A[pIndex, qIndex] != 0 {
                    let theta = (A[qIndex, qIndex] - A[pIndex, pIndex]) / (2 * A[pIndex, qIndex])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for r in 0..<k {
                        let a = A[r, pIndex], b = A[r, qIndex]
                        A[r, pIndex] = c * a - s * b
                        A[r, qIndex] = s * a + c * b
                    }
                    for r in 0..<k {
                        let a = A[pIndex, r], b = A[qIndex, r]
                        A[pIndex, r] = c * a - s * b
                        A[qIndex, r] = s * a + c * b
                    }
                }
            }
        }
        return (0..<k).map { A[$0, $0] }
    }
}
