import Foundation

/// The χ² distribution's upper tail through the regularized incomplete gamma function,
/// `P(X > x) = Q(k/2, x/2)` for `k` degrees of freedom — what R's
/// `pchisq(x, k, lower.tail = FALSE)` computes for lme4's `anova`.
///
/// Q(a, x) = Γ(a, x)/Γ(a) is evaluated as in Numerical Recipes (Press et al., 3rd ed., §6.2):
/// for x < a + 1 by the series of the lower function, P(a, x) = e⁻ˣ xᵃ/Γ(a) Σₙ xⁿ/(a(a+1)…(a+n)),
/// and Q = 1 − P; otherwise by the continued fraction of Q itself, evaluated by the modified
/// Lentz method — each where it converges fast and Q keeps its relative precision in the far
/// tail (p-values of 1e-60 are not rounded to 0 by 1 − P).
enum ChiSquare {
    /// `P(X > x)` for X ~ χ²(k), k > 0.
    static func upperTail(_ x: Double, degreesOfFreedom k: Double) -> Double {
        precondition(k > 0, "degrees of freedom must be positive")
        if x.isNaN { return .nan }
        if x <= 0 { return 1 }
        return RegularizedGamma.upper(a: k / 2, x: x / 2)
    }
}

/// The regularized incomplete gamma functions P(a, x) and Q(a, x) = 1 − P(a, x), a > 0, x ≥ 0.
enum RegularizedGamma {
    private static let epsilon = 1e-16
    private static let maximumIterations = 10_000
    /// Smallest representable number above 0, scaled: guards the Lentz method's divisions.
    private static let tiny = Double.leastNormalMagnitude / epsilon

    static func lower(a: Double, x: Double) -> Double {
        precondition(a > 0 && x >= 0)
        if x == 0 { return 0 }
        return x < a + 1 ? series(a: a, x: x) : 1 - continuedFraction(a: a, x: x)
    }

    static func upper(a: Double, x: Double) -> Double {
        precondition(a > 0 && x >= 0)
        if x == 0 { return 1 }
        if x.isInfinite { return 0 }
        return x < a + 1 ? 1 - series(a: a, x: x) : continuedFraction(a: a, x: x)
    }

    /// e⁻ˣ xᵃ / Γ(a), in logs so that large a and x do not overflow.
    private static func prefactor(a: Double, x: Double) -> Double {
        exp(-x + a * log(x) - lgamma(a))
    }

    /// P(a, x) by its series (NR `gser`): converges for any x, fast for x < a + 1.
    private static func series(a: Double, x: Double) -> Double {
        var denominator = a
        var term = 1 / a
        var sum = term
        for _ in 0..<maximumIterations {
            denominator += 1
            term *= x / denominator
            sum += term
            if abs(term) < abs(sum) * epsilon { break }
        }
        return sum * prefactor(a: a, x: x)
    }

    /// Q(a, x) by its continued fraction (NR `gcf`, modified Lentz): fast for x > a + 1.
    private static func continuedFraction(a: Double, x: Double) -> Double {
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var h = d
        for i in 1...maximumIterations {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < epsilon { break }
        }
        return prefactor(a: a, x: x) * h
    }
}
