/// Everything a fit reports, whatever the method: the numbers of lme4's `summary`, `VarCorr`,
/// `ranef(condVar = TRUE)`, `logLik`, `AIC`, `BIC`, under the key names of the reference JSONs.
public struct FitResult: Sendable {
    /// The model formula, as given.
    public var formula: String
    /// REML or ML.
    public var criterion: Criterion
    /// How the variance components were obtained (the JSON report's `algorithm`).
    public var method: FitMethod
    /// Number of observations used (rows with missing values dropped).
    public var nobs: Int
    /// θ, lme4's relative covariance parameters.
    public var theta: [Double]
    /// Residual standard deviation σ.
    public var sigma: Double
    /// lme4's names of the fixed-effect coefficients (columns of X kept).
    public var fixedEffectNames: [String]
    /// β̂, in the order of ``fixedEffectNames``.
    public var fixedEffects: [Double]
    /// Standard errors of β̂ (square roots of the diagonal of ``fixedEffectCovariance``).
    public var fixedEffectStandardErrors: [Double]
    /// Covariance matrix of the fixed-effects estimates, p × p.
    public var fixedEffectCovariance: Matrix
    /// lme4's `as.data.frame(VarCorr(m))` rows.
    public var varianceComponents: [VarCorrEntry]
    /// The log-likelihood (REML or ML, as ``criterion``).
    public var logLikelihood: Double
    /// REML criterion or deviance (−2 log-likelihood).
    public var objective: Double
    /// Akaike's criterion, −2 logLik + 2k with k = ``parameterCount``.
    public var AIC: Double
    /// Schwarz's criterion, −2 logLik + log(n) k.
    public var BIC: Double
    /// Number of observations of each grouping factor, in lme4's order.
    public var groups: [(name: String, levels: Int)]
    /// b̂ with conditional standard deviations, in lme4's order.
    public var randomEffects: [RanefRow]
    /// Quantiles (min, 1st quartile, median, 3rd quartile, max) of the scaled residuals.
    public var scaledResidualQuantiles: [Double]
    /// Iterations of the method (objective evaluations for the exact optimizer).
    public var iterations: Int
    /// False when the method stopped at its iteration limit (see ``messages``).
    public var converged: Bool
    /// True when a variance component is (nearly) zero: lme4's `isSingular`.
    public var isSingular: Bool
    /// Messages for the user: dropped rows and columns, boundary fits, convergence.
    public var messages: [String]
    /// Wall time of the fit.
    public var elapsedSeconds: Double
    /// Progress of iterative methods: objective and variance components per iteration.
    public var trajectory: [TrajectoryPoint]
    /// Stochastic fits (`--method iterative`): the Monte Carlo standard errors of what rests on
    /// probes; nil for the deterministic methods.
    public var monteCarloErrors: MonteCarloErrors? = nil
    /// How each variable of the formula was computed from the data (``ModelFrame/transformations``).
    package var transformations: [JSONValue] = []

    /// Number of parameters counted by AIC and BIC: p + length(θ) + 1.
    public var parameterCount: Int { fixedEffects.count + theta.count + 1 }
}

/// One row of lme4's `as.data.frame(VarCorr(m))`: a variance (`var2` nil), a covariance, or
/// the residual (`grp` is `Residual`, `var1` nil). `sdcor` is the standard deviation of a
/// variance and the correlation of a covariance.
public struct VarCorrEntry: Sendable, Codable, Equatable {
    /// Group label (`Subject`, `Subject.1`, …) or `Residual`.
    public var grp: String
    /// The effect (nil for the residual).
    public var var1: String?
    /// The second effect of a covariance (nil for a variance).
    public var var2: String?
    /// The variance or covariance.
    public var vcov: Double
    public var sdcor: Double?

    /// An entry; `sdcor` may be nil where only `vcov` is read (variance files).
    public init(grp: String, var1: String?, var2: String?, vcov: Double, sdcor: Double?) {
        self.grp = grp
        self.var1 = var1
        self.var2 = var2
        self.vcov = vcov
        self.sdcor = sdcor
    }
}

/// One conditional mode of a random effect, with its conditional standard deviation.
public struct RanefRow: Sendable, Codable, Equatable {
    /// The grouping factor.
    public var factor: String
    /// The effect (`(Intercept)`, a covariate).
    public var term: String
    /// The level of the grouping factor.
    public var level: String
    /// The conditional mode.
    public var value: Double
    /// Its conditional standard deviation.
    public var condSD: Double
}

/// The state of an iterative method after one iteration.
public struct TrajectoryPoint: Sendable, Codable {
    /// 1-based.
    public var iteration: Int
    /// REML criterion (or deviance) at the variances the iteration started from.
    public var objective: Double
    public var sigma: Double
    public var varcorr: [VarCorrEntry]
    /// β̂ of the exact PLS solve at those variances.
    public var fixef: [Double]
}
