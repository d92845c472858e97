import Foundation

/// Aitken's Δ² extrapolation of the MacKay updates, component by component in log scale.
///
/// The evidence update converges linearly, and slowly for a variance that each level says
/// little about (a random slope with few rows per level: a rate of 0.9 or more per update).
/// After three consecutive updates that move a component the same way at a steady rate
/// ρ = Δₖ/Δₖ₋₁ < 0.95, the component jumps to the limit of that geometric sequence,
/// xₖ + Δₖ ρ/(1 − ρ) (at most a factor of 3), and the history restarts. The MacKay update that
/// follows corrects any overshoot: the extrapolation changes the path, not the fixed point.
struct MacKayExtrapolation {
    private var history: [[Double]] = []

    /// The components after an update (variances and σ², all positive), possibly extrapolated,
    /// and whether they were.
    mutating func next(_ values: [Double]) -> (values: [Double], jumped: Bool) {
        history.append(values.map { log($0) })
        guard history.count == 3 else { return (values, false) }
        let (a, b, c) = (history[0], history[1], history[2])
        var result = values
        var jumped = false
        for i in values.indices {
            let d1 = b[i] - a[i], d2 = c[i] - b[i]
            guard d1 * d2 > 0 else { continue }
            let rate = d2 / d1
            guard rate > 0.2, rate < 0.95 else { continue }
            let step = max(min(d2 * rate / (1 - rate), log(3.0)), -log(3.0))
            result[i] = exp(c[i] + step)
            jumped = true
        }
        history = jumped ? [] : Array(history.suffix(2))
        return (result, jumped)
    }
}
