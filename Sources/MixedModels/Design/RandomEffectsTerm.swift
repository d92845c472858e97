/// One random-effects term `(effects | grouping)` over the rows of a model frame: the
/// grouping factor's levels and codes, and the term's own model matrix (`Xⱼ`, n × k).
///
/// Its columns of `Z` are ordered as lme4 orders them: level by level, and within a level
/// the k effects (`(Intercept)`, `Days`, …), so that `Λ` is block diagonal with one k × k
/// lower-triangular block `Tⱼ` repeated per level.
/// Where the term sits in `Z`, θ and the templates, and how Λ acts on it, is its
/// ``TermLayout`` (``RandomEffectsDesign/layouts``).
public struct RandomEffectsTerm: Sendable {
    /// Name of the grouping factor as lme4 writes it (`Subject`, `sample:plate`).
    public let groupingName: String
    /// Names of the effects, as lme4 names them (`(Intercept)`, `Days`).
    public let effectNames: [String]
    /// Level labels of the grouping factor, in lme4's order.
    public let levels: [String]
    /// Level code of each row.
    var codes: [Int32]
    /// The term's model matrix, n × k.
    var effects: Matrix
    /// Where the term is written in the formula.
    let span: Range<Int>

    /// Number of effects per level (k).
    public var effectCount: Int { effectNames.count }
    /// Number of levels (ℓ).
    public var levelCount: Int { levels.count }
    /// Number of columns of `Z` this term contributes (k·ℓ).
    public var columnCount: Int { effectCount * levelCount }
    /// Number of covariance parameters θ of this term: the lower triangle of `Tⱼ`.
    public var parameterCount: Int { effectCount * (effectCount + 1) / 2 }
}
