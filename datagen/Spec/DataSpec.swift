/// What `datagen` generates: a linear mixed model with known truth,
///
///     y = intercept + Σ βₖ xₖ + Σ (categorical fixed effects) + Σⱼ Zⱼ bⱼ + σ ε,
///
/// with numeric covariates `xₖ ~ N(mean, sd²)`, grouping factors drawn with given level
/// frequencies (crossed: independently; nested: a child within its parent), random effects
/// `bⱼ ~ N(0, Σⱼ)` per level of each grouping and `ε ~ N(0, 1)`. Notation: lme4's (Bates et
/// al. 2015), with `Σⱼ` the covariance of one level's effects (what `VarCorr` reports).
///
/// A spec file is the JSON form of this type (see ``DataSpec/parse(_:source:)``); the
/// presets (``Presets``) are built-in specs.
struct DataSpec: Equatable, Sendable {
    var rows: Int
    var seed: UInt64
    var response: String = "y"
    var intercept: Double
    var covariates: [Covariate]
    var factors: [FactorSpec]
    var random: [RandomSpec]
    /// Residual standard deviation σ.
    var sigma: Double
    /// Rows per chunk of an `.lmmbin` output.
    var rowsPerChunk: Int = 65_536

    /// A numeric covariate `x ~ N(mean, sd²)` with fixed-effect coefficient `coefficient`.
    struct Covariate: Equatable, Sendable {
        var name: String
        var coefficient: Double
        var mean: Double = 0
        var sd: Double = 1
    }

    /// A categorical variable: a grouping factor, a categorical covariate (with
    /// `coefficients`), or both.
    struct FactorSpec: Equatable, Sendable {
        var name: String
        var levels: Int
        /// Explicit labels, in R's order (the first is the reference level); nil: generated
        /// labels `prefix` + zero-padded 1-based index (`u00042`).
        var labels: [String]?
        /// Prefix of generated labels; nil: the first letter of the name.
        var prefix: String?
        var distribution: Distribution = .uniform
        /// Name of the factor this one is nested in: each level belongs to one parent level.
        var parent: String?
        /// Fixed effect of each non-reference level, by label (treatment contrasts).
        var coefficients: [String: Double]?

        var labelPrefix: String { prefix ?? String(name.prefix(1)) }
    }

    /// How often each level occurs.
    enum Distribution: Equatable, Sendable {
        case uniform
        /// Weight of the level of rank r (1-based) ∝ r^−s; ranks are assigned to levels by a
        /// seeded random permutation (within a parent for nested factors: first child first).
        case zipf(exponent: Double)
        /// Given probabilities of the levels, in label order (normalized).
        case probabilities([Double])
    }

    /// A random-effects term `(effects | group)`: `effects` are `(Intercept)` and numeric
    /// covariates; `group` is a factor or an interaction `a:b` of factors.
    struct RandomSpec: Equatable, Sendable {
        var group: String
        var effects: [String]
        var scale: Scale

        /// Σ, k × k, in the order of `effects`.
        var covariance: [[Double]] {
            switch scale {
            case .covariance(let sigma): return sigma
            case .sd(let sd, let correlation):
                return sd.indices.map { r in sd.indices.map { s in sd[r] * sd[s] * (r == s ? 1 : correlation?[r][s] ?? 0) } }
            }
        }

        var groupFactors: [String] { group.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }

    /// How a term's covariance is given: standard deviations and correlations (nil: 0), or Σ.
    enum Scale: Equatable, Sendable {
        case sd([Double], correlation: [[Double]]?)
        case covariance([[Double]])
    }
}
