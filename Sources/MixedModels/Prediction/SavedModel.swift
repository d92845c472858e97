/// A fitted model written by `lmm fit … --save MODEL.lmm` and read by `lmm predict`: everything
/// needed to evaluate `Xβ + Zb` on new data (the formula, the columns' roles and types, the
/// factor levels and contrasts behind `X`, θ, β, σ, the conditional modes b̂ of every level with
/// their conditional SDs), plus where the fit came from (criterion, number of observations, the
/// data file's fingerprint). Notation of Bates et al. (2015).
///
/// The file is JSON (``SavedModel/json``, format ``formatName`` version ``formatVersion``);
/// README's "Saved models" section documents its keys.
public struct SavedModel: Sendable, Equatable {
    /// The `format` key of every model file.
    public static let formatName = "lmm-model"
    /// The version this build writes; it reads this version and earlier ones. Version 2 added
    /// the covariances behind prediction intervals (``fixedEffectCovariance``, ``jointCovariance``);
    /// version 3 the formula's function calls (``transformations``), the ``contrasts`` and the
    /// ``offset`` column; version 4 the models of the approximate methods (`--method adam` and
    /// `iterative`) with what in them is approximate (``approximations``).
    public static let formatVersion = 4

    /// The formula as written (parsed again on loading).
    public var formula: String
    public var criterion: Criterion
    /// How the variance components were obtained (`exact`, `given`, `mackay`, …).
    public var algorithm: String
    /// Observations used by the fit (after na.omit).
    public var nobs: Int
    public var data: DataFingerprint
    /// Every column the formula uses, in order of first reference.
    public var columns: [Column]
    /// Names of the columns of `X` (aliased columns dropped) and β̂.
    public var fixedEffectNames: [String]
    public var beta: [Double]
    /// Columns of the full model matrix dropped as aliased (rank deficiency).
    public var droppedFixedEffects: [String]
    /// θ, lme4's relative covariance parameters.
    public var theta: [Double]
    /// Residual standard deviation σ̂.
    public var sigma: Double
    /// The random-effects terms, in lme4's order.
    public var terms: [Term]
    /// The column of prior weights of the fit (`lmm fit --weights`), nil without weights; `lmm plot`
    /// needs it to rebuild the fit's residuals from the data.
    public var weights: String?
    /// The offset column of the fit (`lmm fit --offset`), read from new data by `lmm predict`;
    /// nil without one (and in files before version 3).
    public var offset: String?
    /// How the fit coded unordered factors (`lmm fit --contrasts`; treatment before version 3).
    public var contrasts: ContrastCoding
    /// The formula's function calls (`log(x)`, `scale(x)`, `poly(x, 2)`, `factor(x)`,
    /// `offset(z)`, …) with what they computed on the training data, so that new data is
    /// evaluated as R's `predict` does (`makepredictcall`): not re-centred or re-orthogonalised.
    /// Empty before version 3.
    public var transformations: [Transformation]
    /// lme4's `vcov(m)`, σ²(RX'RX)⁻¹, p × p column by column (nil in a version-1 file).
    public var fixedEffectCovariance: [Double]?
    /// `Cov(b̂ − b, β̂ − β)` given θ and σ, the lower triangle packed column by column, b in
    /// the order of ``terms`` (term, level, effect) then β (see `JointCovariance`); nil in a
    /// version-1 file or when q + p exceeds the stored size limit (1000).
    public var jointCovariance: [Double]?
    /// For a model with one random term whose joint covariance is too large to store: the
    /// blocks of it that conditional intervals need, per level (``LevelCovariance``); version 3.
    var levelCovariance: LevelCovariance?
    /// What is approximate in a model of `--method adam` or `iterative` (empty for the exact
    /// methods and in files before version 4), each quantity with how it was obtained.
    public var approximations: [Approximation] = []

    /// An approximate quantity of the model (``approximations``).
    public struct Approximation: Sendable, Equatable {
        /// The model file's key or quantity (`condSD`, `fixef.vcov`, `theta`, …).
        public var quantity: String
        /// How it was obtained, or why it is missing.
        public var how: String

        public init(quantity: String, how: String) {
            self.quantity = quantity
            self.how = how
        }
    }

    /// Whether the model comes from an approximate method (`--method adam` or `iterative`).
    public var isApproximate: Bool { !approximations.isEmpty }

    /// q, the number of random effects.
    public var randomEffectCount: Int { terms.reduce(0) { $0 + $1.modes.count } }

    /// A column of the data: what the formula uses it for, its type, and for a categorical
    /// variable that enters a model matrix, its levels (those the fitted rows use, in R's
    /// order) and contrasts.
    public struct Column: Sendable, Equatable {
        public enum Role: String, Sendable, CaseIterable {
            /// The response `y`.
            case response
            /// A variable of the fixed-effects terms (a column of `X` or a factor coded into several).
            case fixed
            /// A variable of a random term's effects (left of the bar).
            case randomEffect = "random-effect"
            /// (Part of) a grouping factor (right of the bar).
            case grouping

            /// What `formula` uses the column `name` for, in this order.
            static func roles(of name: String, in formula: Formula) -> [Role] {
                var roles: [Role] = []
                if name == formula.response { roles.append(.response) }
                if formula.fixed.terms.contains(where: { $0.variables.contains(name) }) { roles.append(.fixed) }
                if formula.random.contains(where: { $0.effects.terms.contains { $0.variables.contains(name) } }) {
                    roles.append(.randomEffect)
                }
                if formula.groupingColumns.contains(name) { roles.append(.grouping) }
                return roles
            }
        }
        public var name: String
        public var roles: [Role]
        /// `numeric` or `categorical`.
        public var isCategorical: Bool
        /// For a categorical model variable: its levels in R's order, the first the reference.
        public var levels: [String]?
        /// For a categorical model variable: `treatment`, `sum` or `helmert` (R's `contr.*`;
        /// the model's ``SavedModel/contrasts``).
        public var contrasts: String?
    }

    /// A variable of the formula that is a function call, and what it needs to be evaluated
    /// on new data: the levels of `factor(x)`, the training centre and scale of `scale(x)`,
    /// the coefficients of `poly(x, k)` (R's `attr(, "coefs")`). A call of element-wise
    /// functions (`log(x)`, `I(x^2)`, `offset(z)`) needs nothing beyond its text.
    public struct Transformation: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case numeric, factor, scale, poly
        }
        /// The call's label as written in the formula (`poly(Days, 2)`).
        public var variable: String
        public var kind: Kind
        /// `factor`: the levels of the fitted rows, in R's order.
        public var levels: [String]?
        /// `scale`: the training mean (nil when not centring) and scale (nil when not scaling).
        public var center: Double?
        public var scale: Double?
        /// `poly`: the degree, whether raw powers, and for orthogonal ones R's `alpha` and `norm2`.
        public var degree: Int?
        public var raw: Bool?
        public var alpha: [Double]?
        public var norm2: [Double]?

        public init(variable: String, kind: Kind, levels: [String]? = nil, center: Double? = nil, scale: Double? = nil,
                    degree: Int? = nil, raw: Bool? = nil, alpha: [Double]? = nil, norm2: [Double]? = nil) {
            self.variable = variable
            self.kind = kind
            self.levels = levels
            self.center = center
            self.scale = scale
            self.degree = degree
            self.raw = raw
            self.alpha = alpha
            self.norm2 = norm2
        }
    }

    /// One random-effects term `(effects | grouping)` with its conditional modes.
    public struct Term: Sendable, Equatable {
        /// Index of the term in the parsed formula's random terms (before lme4's reordering).
        public var formulaIndex: Int
        /// lme4's name of the grouping factor (`Subject`, `sample:plate`).
        public var groupingName: String
        public var effectNames: [String]
        /// Level labels of the grouping factor in lme4's order.
        public var levels: [String]
        /// b̂: effect `r` of level `l` is `modes[l * k + r]` (k effects), lme4's column order of `Z`.
        public var modes: [Double]
        /// Conditional standard deviations, in the layout of `modes`.
        public var conditionalSD: [Double]

        public var effectCount: Int { effectNames.count }
    }
}

/// Identifies the data file a model was fitted to: its name, size and a fast hash of its bytes.
public struct DataFingerprint: Sendable, Equatable {
    /// The file's last path component.
    public var file: String
    /// Data rows in the file (before na.omit).
    public var rows: Int
    public var bytes: Int
    /// ``FileHash`` of the file's bytes, 16 hexadecimal digits.
    public var hash: String
}
