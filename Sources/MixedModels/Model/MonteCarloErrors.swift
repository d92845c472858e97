/// The Monte Carlo standard errors of a stochastic fit (`--method iterative`): how far each
/// estimate that rests on random probes may move with other probes (another `--seed`). They
/// shrink as 1/√N with the number of probes N. The JSON report writes them under `mc_se`, with
/// the key names of the estimates they belong to: `theta`, `sigma`, `varcorr` (the same rows as
/// the fit's, `vcov` and `sdcor` holding the standard errors of the variance or covariance and
/// of the standard deviation or correlation), `objective`, `logLik`, `AIC`, `BIC`, and a
/// summary of those of the conditional SDs (`condSD`).
///
/// What is not here is exact for the estimated variances: β̂, its standard errors and the
/// conditional modes are penalized least-squares solves at those variances (to the tolerance of
/// conjugate gradients); their Monte Carlo error enters only through the variances.
public struct MonteCarloErrors: Codable, Sendable, Equatable {
    /// Rademacher probes of the fit.
    public var probes: Int
    /// Of θ, in θ's order.
    public var theta: [Double]
    /// Of σ.
    public var sigma: Double
    /// The fit's `varcorr` rows with the standard errors in place of the values: of the
    /// variance or covariance in `vcov`, of the standard deviation or correlation in `sdcor`.
    public var varcorr: [VarCorrEntry]
    /// Of the REML criterion or deviance (the stochastic Lanczos quadrature of log det).
    public var objective: Double
    /// Of the log-likelihood (half that of ``objective``).
    public var logLik: Double
    /// Of AIC (that of ``objective``).
    public var AIC: Double
    /// Of BIC (that of ``objective``).
    public var BIC: Double
    /// Per grouping factor and effect: the conditional SDs' standard errors relative to them.
    public var condSD: [ConditionalSDErrors]

    public init(probes: Int, theta: [Double], sigma: Double, varcorr: [VarCorrEntry], objective: Double,
                condSD: [ConditionalSDErrors]) {
        self.probes = probes
        self.theta = theta
        self.sigma = sigma
        self.varcorr = varcorr
        self.objective = objective
        logLik = objective / 2
        AIC = objective
        BIC = objective
        self.condSD = condSD
    }

    /// The relative Monte Carlo standard errors of one effect's conditional SDs over the levels
    /// of its grouping factor.
    public struct ConditionalSDErrors: Codable, Sendable, Equatable {
        /// The grouping factor.
        public var factor: String
        /// The effect.
        public var term: String
        /// Median over the levels of standard error / condSD.
        public var relativeMedian: Double
        /// Largest over the levels of standard error / condSD.
        public var relativeMax: Double

        public init(factor: String, term: String, relativeMedian: Double, relativeMax: Double) {
            self.factor = factor
            self.term = term
            self.relativeMedian = relativeMedian
            self.relativeMax = relativeMax
        }

        enum CodingKeys: String, CodingKey {
            case factor, term
            case relativeMedian = "relative_median"
            case relativeMax = "relative_max"
        }
    }
}
