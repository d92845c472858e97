/// Exact moves, between epochs, along the directions that leave every fitted value unchanged
/// and only change the penalty — the modes that per-level steps cannot see, and along which the
/// minibatch iteration alone would crawl:
///
/// - **Centering into β.** When an effect's column is also a column of X (an intercept, a
///   slope), adding a constant to that effect of every level and removing it from β changes
///   nothing but the penalty, which is lowest with the effects' mean at zero. (At the PLS
///   solution, Σₗ Vⱼ⁻¹bₗ = X'r/σ² = 0.) More generally, for the columns of X that are constant
///   within each level of a term — a group-level covariate, a categorical fixed effect whose
///   levels nest the term's (`(1 | dept:service)` with `service` in X; `(1 | Lot)` with Lots
///   nested in `Source`) — the term's intercepts are regressed on those columns' level values
///   W and the fit moves into β: δ = (W'W)⁻¹W'b, b ← b − Wδ, β ← β + δ.
/// - **Nested terms.** For `(1 | parent) + (1 | parent:child)`, adding δ to a parent's effect
///   and removing it from each of its children's changes nothing but the penalty, minimized by
///   δ = (λ_c Σ b_child − λ_p b_parent)/(λ_p + m λ_c), with λ = σ²/σ²ⱼ and m children.
struct Rebalancing {
    /// Term `child`'s levels nested in term `parent`'s (both `(1 | …)`): parent slot of each child slot.
    struct Nesting {
        let parent: Int
        let child: Int
        let parentOf: [Int32]
    }

    /// The intercepts (effect `effect`) of `term` regressed on the level values of X's columns
    /// `columns` (the intercept's first; `values[c][slot]` for the others).
    struct LevelRegression {
        let term: Int
        let effect: Int
        let columns: [Int]
        let values: [[Double]]
    }

    var nestings: [Nesting] = []
    var regressions: [LevelRegression] = []
    /// Per term and effect, the column of X with the same values (centered globally), unless a
    /// level regression handles it.
    var global: [[Int?]] = []

    /// The moves that `design`'s terms allow.
    /// - Parameter levelConstants: per term, the columns of X constant within each of its levels,
    ///   with each slot's value (from the statistics pass).
    init(design: StreamingDesign, states: [TermState], levelConstants: [[(column: Int, values: [Double])]]) {
        let fixedNames = design.fixed.names
        global = design.terms.map { term in term.effects.names.map { fixedNames.firstIndex(of: $0) } }
        for (j, term) in design.terms.enumerated() {
            // Nesting: the parent with the most grouping columns among strict subsets.
            if states[j].interceptOnly, term.groupingColumns.count > 1 {
                let candidates = design.terms.indices.filter { i in
                    i != j && states[i].interceptOnly && term.groupingColumns.count > design.terms[i].groupingColumns.count
                        && Set(design.terms[i].groupingColumns).isSubset(of: term.groupingColumns)
                }
                if let parent = candidates.max(by: { design.terms[$0].groupingColumns.count < design.terms[$1].groupingColumns.count }),
                   let parentOf = Self.parentSlots(child: term, parent: design.terms[parent]) {
                    nestings.append(Nesting(parent: parent, child: j, parentOf: parentOf))
                }
            }
            // Regression on the level-constant columns of X.
            guard let effect = term.effects.names.firstIndex(of: "(Intercept)"), let intercept = global[j][effect],
                  !levelConstants[j].isEmpty else { continue }
            regressions.append(LevelRegression(term: j, effect: effect, columns: [intercept] + levelConstants[j].map(\.column),
                                               values: levelConstants[j].map(\.values)))
            global[j][effect] = nil
        }
    }

    /// The parent slot of each child slot, from the ranks of the columns they share.
    private static func parentSlots(child: StreamingDesign.Term, parent: StreamingDesign.Term) -> [Int32]? {
        guard let childRanks = child.grouping.ranks else { return nil }
        let positions = parent.groupingColumns.map { child.groupingColumns.firstIndex(of: $0)! }
        let slotCount = child.grouping.slotCount
        switch parent.grouping.map {
        case .column:
            return childRanks[positions[0]]
        case .interaction(_, _, let radix, let slotOfKey):
            var parentOf = [Int32](repeating: -1, count: slotCount)
            for s in 0..<slotCount {
                var key: Int64 = 0
                for (i, position) in positions.enumerated() { key += Int64(childRanks[position][s]) * radix[i] }
                guard let slot = slotOfKey[key] else { return nil }
                parentOf[s] = slot
            }
            return parentOf
        }
    }

    /// Applies every move to the current estimates (β, b).
    func apply(states: [TermState], beta: inout [Double]) {
        for nesting in nestings {
            let parent = states[nesting.parent], child = states[nesting.child]
            let lambdaParent = parent.precision[0], lambdaChild = child.precision[0]
            var sums = [Double](repeating: 0, count: parent.slotCount)
            var counts = [Double](repeating: 0, count: parent.slotCount)
            for s in 0..<child.slotCount where child.count(child.record(s)) > 0 {
                let p = Int(nesting.parentOf[s])
                sums[p] += child.record(s)[0]
                counts[p] += 1
            }
            var delta = [Double](repeating: 0, count: parent.slotCount)
            for p in 0..<parent.slotCount where counts[p] > 0 && parent.count(parent.record(p)) > 0 {
                let record = parent.record(p)
                delta[p] = (lambdaChild * sums[p] - lambdaParent * record[0]) / (lambdaParent + counts[p] * lambdaChild)
                record[0] += delta[p]
            }
            for s in 0..<child.slotCount where child.count(child.record(s)) > 0 {
                child.record(s)[0] -= delta[Int(nesting.parentOf[s])]
            }
        }
        for regression in regressions {
            let state = states[regression.term], a = regression.effect, m = regression.columns.count
            // W'W and W'b over the used levels; W's first column is the intercept's ones.
            var gram = [Double](repeating: 0, count: m * m), right = [Double](repeating: 0, count: m)
            var w = [Double](repeating: 1, count: m)
            for s in 0..<state.slotCount where state.count(state.record(s)) > 0 {
                for c in 1..<m { w[c] = regression.values[c - 1][s] }
                let b = state.record(s)[a]
                for c in 0..<m {
                    right[c] += w[c] * b
                    for d in 0..<m { gram[c + d * m] += w[c] * w[d] }
                }
            }
            var delta = right
            let solved = gram.withUnsafeMutableBufferPointer { G in
                delta.withUnsafeMutableBufferPointer { x in
                    guard SmallCholesky.factorInPlace(G.baseAddress!, m) else { return false }
                    SmallCholesky.solveLower(G.baseAddress!, m, x.baseAddress!)
                    SmallCholesky.solveUpper(G.baseAddress!, m, x.baseAddress!)
                    return true
                }
            }
            // Columns that are collinear over the levels: center on the intercept alone.
            if !solved || delta.contains(where: { !$0.isFinite }) {
                delta = [Double](repeating: 0, count: m)
                delta[0] = right[0] / Double(max(state.usedCount, 1))
            }
            for s in 0..<state.slotCount where state.count(state.record(s)) > 0 {
                var shift = delta[0]
                for c in 1..<m { shift += regression.values[c - 1][s] * delta[c] }
                state.record(s)[a] -= shift
            }
            for c in 0..<m { beta[regression.columns[c]] += delta[c] }
        }
        for (j, state) in states.enumerated() {
            for a in 0..<state.k {
                guard let t = global[j][a], state.usedCount > 0 else { continue }
                var sum = 0.0
                for s in 0..<state.slotCount where state.count(state.record(s)) > 0 { sum += state.record(s)[a] }
                let mean = sum / Double(state.usedCount)
                for s in 0..<state.slotCount where state.count(state.record(s)) > 0 { state.record(s)[a] -= mean }
                beta[t] += mean
            }
        }
    }
}
