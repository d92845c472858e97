import Foundation

/// MacKay's updates of the variance components between epochs of the streaming fitter, with
/// the posterior variance of each level approximated by its own diagonal block:
///
///     cₗ = σ² (Zₗ'Zₗ + σ²Vⱼ⁻¹)⁻¹,   for a term (1 | g):  cₗ = 1/(nₗ/σ² + 1/σ²ⱼ).
///
/// That block is the exact posterior covariance of bₗ given β and the other terms' effects. It
/// is the exact marginal posterior covariance only for a single grouping factor with no fixed
/// effects; otherwise it ignores the posterior covariance between the levels of crossed or
/// nested factors and with β̂ (the uncertainty that other terms share), so cₗ is a little too
/// small and the evidence form's γ a little too large. In practice the difference is a few
/// percent at most on crossed users × items data (see the README), against the exact MacKay
/// loop that takes these blocks from the selected inverse of the sparse factor.
enum StreamingMacKay {
    /// Throws unless `form` is one the streaming fitter learns its penalties by (quick or
    /// evidence; EM needs the residual trace, which the per-level blocks do not give).
    static func check(_ form: MacKayForm) throws {
        if form == .em {
            throw LMMError.unsupported("adam learns its penalties by the quick or the evidence form, not by EM")
        }
    }

    /// New diagonal covariances and σ² from the sums at one point (b, and SSE = ‖y − Xβ − Zb‖²).
    /// - Parameters:
    ///   - squares: Σₗ bₗₐ² per term and effect.
    ///   - posteriorTraces: Σₗ (Zₗ'Zₗ + σ²Vⱼ⁻¹)⁻¹ₐₐ per term and effect (cₗ/σ² summed).
    ///   - levels: qⱼ, the levels of each term with rows.
    ///   - floor: the smallest variance kept (a variance that reaches zero is held there, so
    ///     that its penalty stays finite).
    static func update(form: MacKayForm, squares: [[Double]], posteriorTraces: [[Double]], levels: [Int], sse: Double,
                       n: Int, p: Int, covariances: [Matrix], sigmaSquared: Double,
                       floor: Double) -> (covariances: [Matrix], sigmaSquared: Double) {
        var updated: [Matrix] = []
        var gammaSum = 0.0
        for (j, V) in covariances.enumerated() {
            let k = V.rows
            var W = Matrix(zeros: k, k)
            for a in 0..<k {
                let q = Double(levels[j])
                switch form {
                case .quick:
                    W[a, a] = squares[j][a] / q
                case .em:
                    preconditionFailure("checked by StreamingMacKay.check")
                case .evidence:
                    let gamma = max(q - sigmaSquared * posteriorTraces[j][a] / V[a, a], 0)
                    gammaSum += gamma
                    W[a, a] = gamma > 0 ? squares[j][a] / gamma : 0
                }
                W[a, a] = max(W[a, a], floor)
            }
            updated.append(W)
        }
        let newSigmaSquared = form == .quick ? sse / Double(n) : sse / max(Double(n - p) - gammaSum, 1)
        return (updated, newSigmaSquared)
    }
}
