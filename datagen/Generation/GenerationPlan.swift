import Foundation

/// A validated ``DataSpec`` made ready to draw rows: level samplers (alias tables built once),
/// the fixed effect of each level of a categorical covariate, and the random effects `b` of
/// every level of every grouping, drawn up front.
///
/// Three independent random streams of the seed keep the parts apart: stream 0 for the
/// tables (which level gets which Zipf rank), stream 1 for the random effects, stream 2 for
/// the rows. The random effects therefore do not depend on the number of rows.
final class GenerationPlan {
    let spec: DataSpec
    let labels: [LevelLabels]
    /// Factor indices, parents before children.
    let factorOrder: [Int]
    let samplers: [LevelSampler]
    /// For a nested factor, its parent's index and the parent code of each of its levels.
    let parents: [(index: Int, codes: [Int32])?]
    /// For a categorical covariate, the fixed effect of each level (0 for the reference).
    let levelEffects: [[Double]?]
    var terms: [TermPlan]

    /// How the levels of one factor are drawn.
    enum LevelSampler {
        case uniform(count: Int)
        case alias(AliasTable)
        /// A level within the parent's block `blockStart[p] ..< blockStart[p + 1]`: uniformly,
        /// or by an alias table over the largest block size (redrawn past a smaller block).
        case nested(parent: Int, blockStart: [Int32], within: AliasTable?)
    }

    /// One random-effects term: its grouping's levels are combinations of key-factor codes,
    /// `combination = Σ code[keys[m]] · strides[m]` (first key slowest, as R orders `a:b`).
    struct TermPlan {
        let spec: DataSpec.RandomSpec
        /// The grouping's factors as written, and those that determine its level.
        let factors: [Int]
        let keys: [Int]
        let strides: [Int]
        let combinations: Int
        /// Covariate index of each effect, −1 for the intercept.
        let effects: [Int]
        /// Row-major combinations × k.
        let b: [Double]
        /// 1 for combinations that occur in the rows.
        var used: [UInt8]

        var k: Int { effects.count }
    }

    /// Builds the tables and draws the random effects.
    /// - Precondition: `spec` is valid (``DataSpec/validate(source:)``).
    init(spec: DataSpec, source: String) throws {
        self.spec = spec
        labels = spec.factors.map(LevelLabels.init)
        factorOrder = try spec.factorOrder(source: source)
        let factorIndex = Dictionary(uniqueKeysWithValues: spec.factors.enumerated().map { ($1.name, $0) })

        var tableRandom = Xoshiro256StarStar(seed: spec.seed, stream: 0)
        var samplers: [LevelSampler] = []
        var parents: [(index: Int, codes: [Int32])?] = []
        for factor in spec.factors {
            let n = factor.levels
            if let parentName = factor.parent, let p = factorIndex[parentName] {
                let parentLevels = spec.factors[p].levels
                let blockStart = (0...parentLevels).map { Int32(Int64($0) * Int64(n) / Int64(parentLevels)) }
                var codes = [Int32](repeating: 0, count: n)
                for q in 0..<parentLevels {
                    for c in Int(blockStart[q])..<Int(blockStart[q + 1]) { codes[c] = Int32(q) }
                }
                parents.append((p, codes))
                let largest = (0..<parentLevels).map { blockStart[$0 + 1] - blockStart[$0] }.max() ?? 1
                var within: AliasTable?
                if case .zipf(let s) = factor.distribution, s > 0 {
                    within = AliasTable(weights: (1...Int(largest)).map { pow(Double($0), -s) })
                }
                samplers.append(.nested(parent: p, blockStart: blockStart, within: within))
                continue
            }
            parents.append(nil)
            switch factor.distribution {
            case .uniform, .zipf(exponent: 0):
                samplers.append(.uniform(count: n))
            case .zipf(let s):
                // Ranks go to levels in a random order, so that label order says nothing of frequency.
                var outcomes = (0..<n).map { Int32($0) }
                for i in stride(from: n - 1, to: 0, by: -1) {
                    outcomes.swapAt(i, tableRandom.index(below: i + 1))
                }
                samplers.append(.alias(AliasTable(weights: (1...n).map { pow(Double($0), -s) }, outcomes: outcomes)))
            case .probabilities(let p):
                samplers.append(.alias(AliasTable(weights: p)))
            }
        }
        self.samplers = samplers
        self.parents = parents

        levelEffects = spec.factors.enumerated().map { f, factor in
            guard let coefficients = factor.coefficients else { return nil }
            let labels = LevelLabels(factor)
            return (0..<factor.levels).map { coefficients[labels.label($0)] ?? 0 }
        }

        var effectRandom = Xoshiro256StarStar(seed: spec.seed, stream: 1)
        terms = spec.random.map { term in
            let factors = term.groupFactors.map { factorIndex[$0]! }
            let keys = spec.keyFactors(groups: term.groupFactors)
            var strides = [Int](repeating: 1, count: keys.count)
            for m in stride(from: keys.count - 2, through: 0, by: -1) {
                strides[m] = strides[m + 1] * spec.factors[keys[m + 1]].levels
            }
            let combinations = keys.reduce(1) { $0 * spec.factors[$1].levels }
            let effects = term.effects.map { name in spec.covariates.firstIndex { $0.name == name } ?? -1 }
            let k = effects.count
            let factor = CovarianceFactor(term.covariance)!
            var b = [Double](repeating: 0, count: combinations * k)
            var z = [Double](repeating: 0, count: k)
            for level in 0..<combinations {
                for e in 0..<k { z[e] = NormalSampler.draw(&effectRandom) }
                for r in 0..<k {
                    var value = 0.0
                    for s in 0...r { value += factor.L[r * k + s] * z[s] }
                    b[level * k + r] = value
                }
            }
            return TermPlan(spec: term, factors: factors, keys: keys, strides: strides, combinations: combinations,
                            effects: effects, b: b, used: [UInt8](repeating: 0, count: combinations))
        }
    }

    /// The code of factor `f` implied by a combination of `term` (a key factor's own code, or
    /// an ancestor's, found through a key factor nested in it).
    func code(of f: Int, inCombination combination: Int, of term: TermPlan) -> Int {
        let keyCodes = term.keys.indices.map { m in (combination / term.strides[m]) % spec.factors[term.keys[m]].levels }
        if let m = term.keys.firstIndex(of: f) { return keyCodes[m] }
        for (m, key) in term.keys.enumerated() where spec.isAncestor(f, of: key) {
            var current = key
            var code = keyCodes[m]
            while current != f, let parent = parents[current] {
                code = Int(parent.codes[code])
                current = parent.index
            }
            return code
        }
        return 0
    }
}
