/// The matrix-free model on the processes of a group, each holding its share of the rows
/// (issue 17): the level-indexed state (levels, Λ, the CG vectors, the per-level blocks) is the
/// same on every process; every sum over rows is a partial sum per process, then
/// ``ProcessGroup/sum(_:)``.
extension IterativeMixedModel {
    /// Builds the model from this process's share of an `.lmmbin` file (collective: every
    /// process of `group` calls it with its own share).
    ///
    /// Each process resolves the formula over its rows; the processes then agree on the levels
    /// of every grouping factor (those used by any row, numbered as one process would number
    /// them) and check what one process would check over all rows. The fixed-effects design
    /// must come out the same on every share: a fixed factor with a level missing from a share,
    /// or a data-dependent transformation (`scale`, `poly`), is refused, as is a rank-deficient
    /// X and a grouping by an interaction (`g1:g2`, `g1/g2`). The frame keeps no rows
    /// (``holdsRows`` is false): a process holds only its share of them.
    /// - Throws: ``LMMError``, on every process (the lowest failing rank's error).
    public convenience init(formula: Formula, share: LMMBinaryShare, group: any ProcessGroup) throws(LMMError) {
        do {
            let (frame, rowChunks) = try Self.distributedFrame(formula: formula, share: share, group: group)
            let model = MixedModelOperator(frame: frame, group: group, observations: rowChunks.total)
            self.init(frame: frame, model: model, rowChunks: rowChunks.byChunk, keepingRows: false)
        } catch {
            throw LMMError(error)
        }
    }

    /// This process's frame, its random terms over the levels every process agreed on, and the
    /// rows it holds per owned chunk and in all.
    static func distributedFrame(formula: Formula, share: LMMBinaryShare, group: any ProcessGroup)
        throws -> (ModelFrame, (byChunk: [Int], total: Int)) {
        var options = ModelOptions()
        options.isRowShare = true
        var frame = try group.agreeing { try ModelFrame(formula: formula, data: share.table, options: options) }
        let checks = DataChecks(formula: formula)

        // The grouping factors: single factor columns of the file, whose levels are the file's.
        var fileLevels: [[String]] = []
        for random in formula.random {
            guard random.grouping.count == 1, case .categorical(let factor) = share.table.columns[random.grouping[0]]! else {
                throw FormulaError("on more than one process, a grouping factor must be one factor column of the file "
                                   + "(not an interaction or a numeric column); make '\(random.groupingName)' a column",
                                   formula: formula.text, span: random.groupingSpan)
            }
            fileLevels.append(factor.levels)
        }
        // Each term's rows per file level, the rows, the dropped rows and Σ log w, over the processes.
        let locals = formula.random.indices.map { i in frame.randomTerms[frame.randomTermSources.firstIndex(of: i)!] }
        var sums: [Double] = []
        for (term, levels) in zip(locals, fileLevels) {
            var position: [String: Int] = [:]
            for (index, label) in levels.enumerated() { position[label] = index }
            let toFile = term.levels.map { position[$0]! }
            var counts = [Double](repeating: 0, count: levels.count)
            for code in term.codes { counts[toFile[Int(code)]] += 1 }
            sums += counts
        }
        let designDropped = frame.droppedFixedEffects.isEmpty ? 0.0 : 1.0
        sums += [Double(frame.n), Double(frame.droppedRowCount), frame.logWeightSum, designDropped]
        group.sum(&sums)
        let totals = Array(sums.suffix(4))
        let observations = Int(totals[0])

        // The fixed-effects design must be rank 0's on every process.
        if totals[3] > 0 {
            throw FormulaError("on more than one process, the fixed-effects model matrix must have full rank on every "
                               + "process's rows; remove the dependent columns from the formula",
                               formula: formula.text, span: 0..<formula.text.count)
        }
        var design = Array("\(frame.fixedEffectNames)\n\(frame.transformations)".utf8)
        var length = [Double(group.rank == 0 ? design.count : 0)]
        group.sum(&length)
        var rankZero = group.rank == 0 ? design : [UInt8](repeating: 0, count: Int(length[0]))
        group.broadcast(&rankZero, from: 0)
        try group.agreeing {
            guard rankZero == design else {
                throw FormulaError("on more than one process, the fixed-effects design must be the same on every process's rows "
                                   + "(a fixed factor's level missing from some, or scale() or poly() of a column, make it differ); "
                                   + "this process's columns: \(frame.fixedEffectNames.joined(separator: ", "))",
                                   formula: formula.text, span: 0..<formula.text.count)
            }
        }
        design = []

        // The terms over the levels used anywhere, in one process's numbering and order.
        var start = 0
        var terms: [RandomEffectsTerm] = []
        for (term, levels) in zip(locals, fileLevels) {
            let counts = sums[start..<start + levels.count]
            start += levels.count
            var global = [Int32](repeating: -1, count: levels.count)
            var labels: [String] = []
            for (index, count) in zip(levels.indices, counts) where count > 0 {
                global[index] = Int32(labels.count)
                labels.append(levels[index])
            }
            var position: [String: Int] = [:]
            for (index, label) in levels.enumerated() { position[label] = index }
            let toGlobal = term.levels.map { global[position[$0]!] }
            terms.append(RandomEffectsTerm(groupingName: term.groupingName, effectNames: term.effectNames, levels: labels,
                                           codes: term.codes.map { toGlobal[Int($0)] }, effects: term.effects, span: term.span))
        }
        let order = TermConventions.order(levelCounts: terms.map(\.levelCount))
        frame.randomTerms = order.map { terms[$0] }
        frame.randomTermSources = order
        frame.droppedRowCount = Int(totals[1])
        frame.logWeightSum = totals[2]

        // What one process checks over all rows.
        try checks.rowsRemain(observations)
        try checkResponseVaries(frame.y, checks: checks, group: group)
        try checks.observations(observations, fixedEffects: frame.X.columns)
        for term in frame.randomTerms {
            try checks.identifiable(groupingName: term.groupingName, levels: term.levelCount, effects: term.effectCount,
                                    span: term.span, n: observations)
        }
        // The rows held per owned chunk (after na.omit), from the table rows kept.
        var byChunk = [Int](repeating: 0, count: share.chunks.count)
        var chunk = 0, end = share.rowCounts.first ?? 0
        for row in frame.dataRows {
            while row >= end { chunk += 1; end += share.rowCounts[chunk] }
            byChunk[chunk] += 1
        }
        return (frame, (byChunk, observations))
    }

    /// The response is not the same number on every row of every process (collective).
    static func checkResponseVaries(_ y: [Double], checks: DataChecks, group: any ProcessGroup) throws {
        // The first value of the lowest rank holding rows, then whether any row differs from it.
        var holders = [Double](repeating: 0, count: group.size)
        if !y.isEmpty { holders[group.rank] = 1 }
        group.sum(&holders)
        guard let lowest = holders.firstIndex(where: { $0 > 0 }) else { return }
        var first = [group.rank == lowest ? y[0] : 0]
        group.sum(&first)
        var differs = [y.contains { $0 != first[0] } ? 1.0 : 0]
        group.sum(&differs)
        if differs[0] == 0 { try checks.response(constant: first[0], firstNonFinite: nil) }
    }

    /// Every process's rows of `local` (a value per row held) in the file's row order, on rank 0
    /// (the others get theirs back): each chunk's values broadcast by its owner (collective).
    func gatheredResiduals(_ local: [Double]) -> [Double] {
        let group = model.group
        guard group.size > 1 else { return local }
        var chunkCount = [Double(rowChunks.count)]
        group.sum(&chunkCount)
        var all: [Double] = []
        if group.rank == 0 { all.reserveCapacity(model.observations) }
        var offset = 0
        for c in 0..<Int(chunkCount[0]) {
            let owner = c % group.size
            var length = [UInt8](repeating: 0, count: 8)
            var bytes: [UInt8] = []
            if group.rank == owner {
                let rows = rowChunks[c / group.size]
                bytes = local[offset..<offset + rows].withUnsafeBytes { Array($0) }
                offset += rows
                length = withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) }
            }
            group.broadcast(&length, from: owner)
            let count = Int(length.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
            if group.rank != owner { bytes = [UInt8](repeating: 0, count: count) }
            group.broadcast(&bytes, from: owner)
            if group.rank == 0 {
                bytes.withUnsafeBytes { all.append(contentsOf: $0.bindMemory(to: Double.self)) }
            }
        }
        return group.rank == 0 ? all : local
    }
}
