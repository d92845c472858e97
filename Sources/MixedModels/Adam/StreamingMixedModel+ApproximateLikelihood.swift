import Foundation

/// The approximate REML criterion (or deviance) of a streaming fit, from the per-level blocks.
extension StreamingMixedModel {
    /// The profiled criterion at σ², with log det(Λ'Z'ZΛ + I) summed over the per-level diagonal
    /// blocks (an upper bound: the coupling between factors is ignored) and log det(RX'RX) taken
    /// from the approximate covariance of β̂.
    /// - Returns: the criterion, and the penalized residual sum of squares ‖y − Xβ − Zb‖² + σ² Σ b'V⁻¹b.
    func approximateLikelihood(sigmaSquared: Double, sse: Double, covarianceOfBeta: Matrix,
                               criterion: Criterion) -> (objective: Double, penalizedRSS: Double) {
        let p = keptFixed.count, n = statistics.n
        var logDetL = 0.0, penalty = 0.0
        for state in states {
            let k = state.k
            let H = UnsafeMutablePointer<Double>.allocate(capacity: k * k)
            defer { H.deallocate() }
            var precision = state.precision
            let logDetPrecision = precision.withUnsafeMutableBufferPointer { Self.logDeterminant($0.baseAddress!, k) }
            for l in 0..<state.slotCount {
                let record = state.record(l)
                guard state.count(record) > 0 else { continue }
                state.curvature(record, into: H)
                logDetL += Self.logDeterminant(H, k) - logDetPrecision
                for a in 0..<k { for c in 0..<k { penalty += record[a] * state.precision[a + c * k] * record[c] } }
            }
        }
        var logDetRX = Double(p) * log(sigmaSquared)
        var C = covarianceOfBeta.values
        logDetRX -= C.withUnsafeMutableBufferPointer { Self.logDeterminant($0.baseAddress!, p) }
        let penalizedRSS = sse + penalty
        let objective = ProfiledObjective(n: n, p: p).atSigma(criterion, sigmaSquared: sigmaSquared, logDetL: logDetL,
                                                              logDetRX: logDetRX, penalizedRSS: penalizedRSS)
        return (objective, penalizedRSS)
    }
}
