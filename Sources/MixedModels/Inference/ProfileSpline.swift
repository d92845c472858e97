import Foundation

/// The interpolation of a likelihood profile as lme4's `confint.thpr` does it: a natural cubic
/// interpolating spline of ζ on the parameter (R's `splines::interpSpline`), inverted into a
/// piecewise cubic of the parameter on ζ (`splines::backSpline`), evaluated at ±z.
struct ProfileSpline {
    /// ζ at the knots, increasing.
    private let knots: [Double]
    /// Per segment the polynomial coefficients (value, slope, ½ second, ⅙ third derivative)
    /// of the parameter as a function of ζ − knots[i].
    private let coefficients: [(Double, Double, Double, Double)]

    /// Builds the inverse spline from profile points `(parameter, ζ)` sorted by parameter with
    /// distinct parameters; nil when there are fewer than four points or ζ is not strictly
    /// increasing at the knots (lme4: "non-monotonic profile").
    init?(parameters x: [Double], zeta y: [Double]) {
        let n = x.count
        guard n >= 4, y.count == n else { return nil }
        // Natural cubic spline ζ(x): second derivatives M with M₀ = Mₙ₋₁ = 0 (tridiagonal solve).
        var h = [Double](repeating: 0, count: n - 1)
        for i in 0..<(n - 1) { h[i] = x[i + 1] - x[i]; if !(h[i] > 0) { return nil } }
        var M = [Double](repeating: 0, count: n)
        if n > 2 {
            let m = n - 2
            var diagonal = [Double](repeating: 0, count: m), rhs = [Double](repeating: 0, count: m)
            for i in 1...m {
                diagonal[i - 1] = 2 * (h[i - 1] + h[i])
                rhs[i - 1] = 6 * ((y[i + 1] - y[i]) / h[i] - (y[i] - y[i - 1]) / h[i - 1])
            }
            for i in 1..<m {
                let factor = h[i] / diagonal[i - 1]
                diagonal[i] -= factor * h[i]
                rhs[i] -= factor * rhs[i - 1]
            }
            M[m] = rhs[m - 1] / diagonal[m - 1]
            if m >= 2 {
                for i in stride(from: m - 1, through: 1, by: -1) { M[i] = (rhs[i - 1] - h[i] * M[i + 1]) / diagonal[i - 1] }
            }
        }
        var slope = [Double](repeating: 0, count: n)
        for i in 0..<(n - 1) { slope[i] = (y[i + 1] - y[i]) / h[i] - h[i] * (2 * M[i] + M[i + 1]) / 6 }
        slope[n - 1] = (y[n - 1] - y[n - 2]) / h[n - 2] + h[n - 2] * (M[n - 2] + 2 * M[n - 1]) / 6

        // backSpline: Hermite cubics in ζ through (ζᵢ, xᵢ) with slopes 1/ζ'(xᵢ).
        for i in 0..<(n - 1) where !(y[i + 1] > y[i]) { return nil }
        let d = slope.map { 1 / $0 }
        var c = [(Double, Double, Double, Double)]()
        for i in 0..<(n - 1) {
            let a = y[i + 1] - y[i], k = x[i + 1] - x[i]
            // [a² a³; 2a 3a²] (c₃, c₄) = (k − a dᵢ, dᵢ₊₁ − dᵢ)
            let r1 = k - a * d[i], r2 = d[i + 1] - d[i]
            let det = a * a * 3 * a * a - a * a * a * 2 * a
            let c3 = (r1 * 3 * a * a - a * a * a * r2) / det
            let c4 = (a * a * r2 - 2 * a * r1) / det
            c.append((x[i], d[i], c3, c4))
        }
        let last = n - 2
        if n > 2 {
            // First segment quadratic: [a a²; 1 2a] (c₂, c₃) = (k, d₁); last quadratic with slope dₙ₋₂.
            let a0 = y[1] - y[0], k0 = x[1] - x[0]
            let det = a0 * 2 * a0 - a0 * a0
            c[0].1 = (k0 * 2 * a0 - a0 * a0 * d[1]) / det
            c[0].2 = (a0 * d[1] - k0) / det
            c[0].3 = 0
            let aL = y[last + 1] - y[last], kL = x[last + 1] - x[last]
            c[last].3 = 0
            c[last].2 = (kL - aL * c[last].1) / (aL * aL)
        }
        if c[0].2 > 0 {
            c[0].2 = 0
            c[0].1 = (x[1] - x[0]) / (y[1] - y[0])
        }
        if c[last].2 < 0 {
            c[last].2 = 0
            c[last].1 = (x[last + 1] - x[last]) / (y[last + 1] - y[last])
        }
        knots = y
        coefficients = c
    }

    /// The parameter at ζ, or nil outside the profiled range of ζ (R's `predict` gives NA).
    func parameter(atZeta z: Double) -> Double? {
        guard let first = knots.first, let end = knots.last, z >= first, z <= end else { return nil }
        // Segment i covers (knots[i], knots[i+1]]; the first knot belongs to segment 0.
        var i = 0
        while i < coefficients.count - 1 && z > knots[i + 1] { i += 1 }
        let t = z - knots[i]
        let (c1, c2, c3, c4) = coefficients[i]
        return c1 + t * (c2 + t * (c3 + t * c4))
    }
}
