/// Everything a fit reports, whatever the method: the numbers of lme4's `summary`, `VarCorr`,
/// `ranef(condVar = TRUE)`, `logLik`, `AIC`, `BIC`, under the key names of the reference JSONs.
public struct FitResult: Sendable {
    public var formula: String
    /// REML or ML.
    public var criterion: Criterion
    /// How the variance components were obtained: `exact` (REML/ML optimization), `given`,
    /// `mackay-quick`, `mackay`, `em`, `adam`.
    public var algorithm: String
    public var nobs: Int
    /// θ, lme4's relative covariance parameters.
    public var theta: [Double]
    /// Residual standard deviation σ.
    public var sigma: Double
    public var fixedEffectNames: [String]
    public var fixedEffects: [Double]
    public var fixedEffectStandardErrors: [Double]
    /// Covariance matrix of the fixed-effects estimates, p × p.
    public var fixedEffectCovariance: Matrix
    public var varianceComponents: [VarCorrEntry]
    public var logLikelihood: Double
    /// REML criterion or deviance (−2 log-likelihood).
    public var objective: Double
    public var AIC: Double
    public var BIC: Double
    /// Number of observations of each grouping factor, in lme4's order.
    public var groups: [(name: String, levels: Int)]
    public var randomEffects: [RanefRow]
    /// Quantiles (min, 1st quartile, median, 3rd quartile, max) of the scaled residuals.
    public var scaledResidualQuantiles: [Double]
    /// Iterations of the method (objective evaluations for the exact optimizer).
    public var iterations: Int
    public var converged: Bool
    /// True when a variance component is (nearly) zero: lme4's `isSingular`.
    public var isSingular: Bool
    /// Messages for the user: dropped rows and columns, boundary fits, convergence.
    public var messages: [String]
    public var elapsedSeconds: Double
    /// Progress of iterative methods: objective and variance components per iteration.
    public var trajectory: [TrajectoryPoint]
    /// How each variable of the formula was computed from the data (``ModelFrame/transformations``).
    public var transformations: [JSONValue] = []

    /// Number of parameters counted by AIC and BIC: p + length(θ) + 1.
    public var parameterCount: Int { fixedEffects.count + theta.count + 1 }
}

/// One row of lme4's `as.data.frame(VarCorr(m))`: a variance (`var2` nil), a covariance, or
/// the residual (`grp` is `Residual`, `var1` nil). `sdcor` is the standard deviation of a
/// variance and the correlation of a covariance.
public struct VarCorrEntry: Sendable, Codable, Equatable {
    public var grp: String
    public var var1: String?
    public var var2: String?
    public var vcov: Double
    public var sdcor: Double?

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
    public var factor: String
    public var term: String
    public var level: String
    public var value: Double
    public var condSD: Double
}

/// The state of an iterative method after one iteration.
public struct TrajectoryPoint: Sendable, Codable {
    public var iteration: Int
    /// REML criterion (or deviance) at the variances the iteration started from.
    public var objective: Double
    public var sigma: Double
    public var varcorr: [VarCorrEntry]
    /// β̂ of the exact PLS solve at those variances.
    public var fixef: [Double]
}
