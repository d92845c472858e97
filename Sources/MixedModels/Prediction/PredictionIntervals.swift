/// The variances behind ``PredictionOptions/Interval`` for rows of new data, from a saved
/// model's covariances (all conditional on θ and σ):
///
/// - conditional, `v = (z, x)` over the terms whose level the fit saw: `v'Cv` with
///   `C = Cov(b̂ − b, β̂ − β)` (``SavedModel/jointCovariance``);
/// - population level: `x'Cov(β̂)x` (``SavedModel/fixedEffectCovariance``);
/// - plus `zⱼ'Σⱼzⱼ`, `Σⱼ = σ²TⱼTⱼ'`, for each term whose level is unseen (every term at the
///   population level), and σ² for a prediction interval.
struct IntervalParts {
    /// Φ⁻¹(1 − (1 − level)/2).
    let quantile: Double
    let populationLevel: Bool
    let addResidual: Bool
    let sigmaSquared: Double
    /// `Cov(β̂)`, p × p column by column.
    let fixedCovariance: [Double]
    /// Packed `Cov(b̂ − b, β̂ − β)` of order `m` (conditional predictions only).
    let joint: [Double]
    /// Without `joint`, for a model with one random term: its per-level blocks.
    let levelBlocks: LevelCovariance?
    let m: Int
    let q: Int
    /// Start of each term's modes in b.
    let offsets: [Int]
    let effectCounts: [Int]
    /// `Σⱼ` of each term, k × k column by column.
    let priorCovariances: [[Double]]

    /// - Throws: ``InputError`` naming the model file's limitation when it lacks what the
    ///   interval needs (a version-1 file, or a model too large for the joint covariance).
    init(model: SavedModel, options: PredictionOptions) throws {
        guard options.level > 0 && options.level < 1 else {
            throw InputError("the interval's level must be strictly between 0 and 1, got \(options.level)")
        }
        quantile = Distributions.normalQuantile(1 - (1 - options.level) / 2)
        populationLevel = options.populationLevel
        addResidual = options.interval == .prediction
        sigmaSquared = model.sigma * model.sigma
        guard let V = model.fixedEffectCovariance else {
            throw InputError("the model file (format version 1) has no covariance of the fixed effects, which intervals need; save the model again with this lmm (lmm fit … --save)")
        }
        fixedCovariance = V
        q = model.randomEffectCount
        m = q + model.beta.count
        levelBlocks = options.populationLevel || model.jointCovariance != nil ? nil : model.levelCovariance
        if options.populationLevel || levelBlocks != nil {
            joint = []
        } else {
            guard let C = model.jointCovariance else {
                if model.isApproximate {
                    throw InputError("the model was fitted by --method \(model.algorithm), which does not compute the covariance of the conditional modes b̂ with β̂ that conditional intervals need; population-level intervals (--re-form none) need only the fixed effects' covariance, which the file has")
                }
                throw InputError("the model file has no joint covariance of the random and fixed effects, which conditional intervals need: it is stored for q + p ≤ \(JointCovariance.limit) (this model: \(m)) or, per level, for a model with one random term; population-level intervals (--re-form none) need only the fixed effects' covariance")
            }
            joint = C
        }
        offsets = model.terms.reduce(into: [0]) { $0.append($0.last! + $1.modes.count) }
        effectCounts = model.terms.map(\.effectCount)
        let parameters = CovarianceParameters(effectCounts: effectCounts)
        priorCovariances = parameters.covariances(theta: model.theta, sigmaSquared: model.sigma * model.sigma).map(\.values)
    }

    /// The standard error of each of `rowCount` rows: `X` the full fixed-effects model matrix
    /// (its kept columns `fixedColumns`), each term's effects and fit level per row (−1 unseen).
    func standardErrors(X: Matrix, fixedColumns: [Int], terms: [(effects: Matrix, levels: [Int32])],
                        rowCount n: Int) -> [Double] {
        let p = fixedColumns.count
        var result = [Double](repeating: 0, count: n)
        var index = [Int](), value = [Double]()
        for i in 0..<n {
            var variance = addResidual ? sigmaSquared : 0
            index.removeAll(keepingCapacity: true)
            value.removeAll(keepingCapacity: true)
            for (j, term) in terms.enumerated() {
                let k = effectCounts[j]
                let level = populationLevel || term.levels.isEmpty ? -1 : Int(term.levels[i])
                if level >= 0 {
                    for e in 0..<k {
                        index.append(offsets[j] + level * k + e)
                        value.append(term.effects.values[e * n + i])
                    }
                } else {
                    let S = priorCovariances[j]
                    for a in 0..<k {
                        for b in 0..<k {
                            variance += term.effects.values[a * n + i] * S[a + b * k] * term.effects.values[b * n + i]
                        }
                    }
                }
            }
            if let blocks = levelBlocks {
                // One term: v'Cv = z'C_bb(l)z + 2z'C_bβ(l)x + x'Cov(β̂)x over the seen level l.
                let level = terms[0].levels.isEmpty ? -1 : Int(terms[0].levels[i])
                if level >= 0 {
                    let k = effectCounts[0], effects = terms[0].effects.values
                    for r in 0..<k {
                        let zr = effects[r * n + i]
                        for s in 0..<k { variance += zr * blocks.bb(level, r, s) * effects[s * n + i] }
                        for c in 0..<p { variance += 2 * zr * blocks.bBeta(level, r, c) * X.values[fixedColumns[c] * n + i] }
                    }
                }
            }
            if populationLevel || levelBlocks != nil {
                for a in 0..<p {
                    let xa = X.values[fixedColumns[a] * n + i]
                    for b in 0..<p { variance += xa * fixedCovariance[a + b * p] * X.values[fixedColumns[b] * n + i] }
                }
            } else {
                for c in 0..<p {
                    index.append(q + c)
                    value.append(X.values[fixedColumns[c] * n + i])
                }
                for a in index.indices {
                    for b in index.indices {
                        variance += value[a] * JointCovariance.entry(joint, m, index[a], index[b]) * value[b]
                    }
                }
            }
            result[i] = max(variance, 0).squareRoot()
        }
        return result
    }
}
