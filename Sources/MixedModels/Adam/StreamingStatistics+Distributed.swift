/// The statistics pass divided over the processes of a group: each sums its own chunks, then
/// the partial sums are combined here (collective).
extension StreamingStatistics {
    /// Replaces this process's partial statistics, and `states`' per-level counts, Zₗ'Zₗ and
    /// Xₗ'Zₗ, by those of every process's chunks, the same bits on every process.
    ///
    /// Bytes: one sum of p² + p + 4 + Σk + K·C doubles (C chunks, K processes), one maximum of 2, and per term
    /// one sum of slots × (1 + k(k+1)/2 + p·k) doubles (the per-level sums; 1 + p for a
    /// `(1 | g)` term), plus per level-constant candidate one sum and two maxima of a double per
    /// slot. Sums of integers (counts, rows) are exact; sums of reals differ from one process's
    /// (which adds the rows in file order) by the order of the additions.
    mutating func combine(states: [TermState], candidates: inout [(term: Int, column: Int, values: [Double])],
                          group: any ProcessGroup) {
        let p = crossXy.count, parts = partRows.count
        // Scalars, X'X, X'y, the effects' sums of squares, and per chunk each rank's part's complete rows.
        var small = [Double(n), Double(rowCount), yy, ySum] + gram + crossXy + effectSquares.flatMap { $0 }
        small += partRows.map(Double.init)
        group.sum(&small)
        n = Int(small[0])
        rowCount = Int(small[1])
        yy = small[2]
        ySum = small[3]
        var at = 4
        for t in 0..<p * p { gram[t] = small[at + t] }
        at += p * p
        for t in 0..<p { crossXy[t] = small[at + t] }
        at += p
        for j in effectSquares.indices {
            for a in effectSquares[j].indices { effectSquares[j][a] = small[at + a] }
            at += effectSquares[j].count
        }
        for c in 0..<parts { partRows[c] = Int(small[at + c]) }
        // A process without complete rows has yMinimum = +∞, yMaximum = −∞: the maximum ignores it.
        var extremes = [yMaximum, -yMinimum]
        group.maximum(&extremes)
        yMaximum = extremes[0]
        yMinimum = -extremes[1]

        for state in states { Self.combineLevels(state, group: group) }

        // Level-constant columns: constant on every process, and each level's value the same
        // wherever it was seen (its largest value equal to its smallest).
        var constantHere = candidates.map { $0.values.isEmpty ? 0.0 : 1.0 }
        group.sum(&constantHere)
        for c in candidates.indices {
            guard constantHere[c] == Double(group.size) else {
                candidates[c].values = []
                continue
            }
            let values = candidates[c].values
            var largest = values.map { $0.isNaN ? -Double.infinity : $0 }
            var negatedSmallest = values.map { $0.isNaN ? -Double.infinity : -$0 }
            group.maximum(&largest)
            group.maximum(&negatedSmallest)
            var constant = true
            var combined = [Double](repeating: .nan, count: values.count)
            for l in values.indices where largest[l] != -.infinity {
                constant = constant && largest[l] == -negatedSmallest[l]
                combined[l] = largest[l]
            }
            candidates[c].values = constant ? combined : []
        }
    }

    /// One term's per-level sums over the processes: nₗ, Zₗ'Zₗ (unless `(1 | g)`) and Xₗ'Zₗ.
    private static func combineLevels(_ state: TermState, group: any ProcessGroup) {
        let k = state.k, p = state.fixedCount
        let blockCount = state.interceptOnly ? 0 : k * (k + 1) / 2
        let width = 1 + blockCount + p * k
        var values = [Double](repeating: 0, count: state.slotCount * width)
        for l in 0..<state.slotCount {
            let record = state.record(l), cross = state.crossXZ + l * p * k
            values[l * width] = Double(state.count(record))
            for b in 0..<blockCount { values[l * width + 1 + b] = record[state.gram + b] }
            for t in 0..<p * k { values[l * width + 1 + blockCount + t] = cross[t] }
        }
        group.sum(&values)
        for l in 0..<state.slotCount {
            let record = state.record(l), cross = state.crossXZ + l * p * k
            state.setCount(record, Int32(values[l * width]))
            for b in 0..<blockCount { record[state.gram + b] = values[l * width + 1 + b] }
            for t in 0..<p * k { cross[t] = values[l * width + 1 + blockCount + t] }
        }
    }
}
