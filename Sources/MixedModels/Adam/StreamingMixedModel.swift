import Foundation

/// A linear mixed model fitted from an `.lmmbin` file read in chunks, for factors with hundreds
/// of thousands to millions of levels where the exact factorization is too costly: the same
/// penalized least-squares objective as ``LinearMixedModel``, minimized by streaming minibatch
/// Adam (``AdamSolver``), with the penalties given or learned between epochs (``StreamingMacKay``).
///
/// Memory is the parameters and optimizer state (a record per level, ``TermState``), one chunk
/// of the file and one minibatch of scratch: it does not grow with the number of rows.
///
///     let reader = try LMMBinaryReader(path: "ratings.lmmbin")
///     let model = try StreamingMixedModel(formula: Formula.parse("y ~ 1 + x + (1 | user) + (1 | item)"), reader: reader)
///     let fit = try model.fit(adam: AdamOptions())
public final class StreamingMixedModel {
    public let formula: Formula
    let reader: LMMBinaryReader
    private(set) var design: StreamingDesign
    /// One per term, in lme4's term order.
    let states: [TermState]
    let statistics: StreamingStatistics
    /// Columns of the full X kept (aliased ones dropped), and the names of those dropped.
    let keptFixed: [Int]
    let droppedFixedEffects: [String]
    /// Per term (lme4 order): the kept columns of X constant within each of its levels, with
    /// each slot's value (see ``Rebalancing``).
    let levelConstants: [[(column: Int, values: [Double])]]

    /// The file's name.
    public var source: String { design.source }
    /// Complete rows (those used).
    public var observationCount: Int { statistics.n }
    /// Rows in the file.
    public var rowCount: Int { statistics.rowCount }

    /// Resolves `formula` against the file's columns and makes the statistics pass.
    /// - Parameter progress: rows read so far, after each chunk of the statistics pass.
    /// - Throws: ``LMMError``: ``LMMError/formula(_:)`` for a formula that does not fit the data
    ///   (as lme4's checks), ``LMMError/input(_:)`` with the row number for a chunk that cannot
    ///   be read; the library's internal failures as ``LMMError/numerical(_:)``.
    public convenience init(formula: Formula, reader: LMMBinaryReader, progress: ((Int) -> Void)? = nil) throws(LMMError) {
        do {
            try self.init(checking: formula, reader: reader, progress: progress)
        } catch {
            throw LMMError(error)
        }
    }

    /// The work of the initializer above (which wraps its errors).
    init(checking formula: Formula, reader: LMMBinaryReader, progress: ((Int) -> Void)?) throws {
        self.formula = formula
        self.reader = reader
        var design = try StreamingDesign(formula: formula, reader: reader)
        let fullCount = design.fixed.count
        let states = design.terms.map {
            TermState(k: $0.effectCount, slotCount: $0.grouping.slotCount, interceptOnly: $0.effects.isInterceptOnly,
                      fixedCount: fullCount)
        }
        let statistics = try StreamingStatistics.gather(design: design, reader: reader, states: states) { progress?($0) }
        let checks = DataChecks(formula: formula)
        try checks.rowsRemain(statistics.n)
        try checks.response(constant: statistics.yMinimum == statistics.yMaximum ? statistics.yMinimum : nil,
                            firstNonFinite: statistics.firstNonFiniteY)
        try checks.magnitude(largest: max(abs(statistics.yMinimum), abs(statistics.yMaximum)),
                             what: "the response '\(formula.response)'", span: formula.responseSpan)
        for t in 0..<fullCount where !(statistics.gram[t + t * fullCount] <= 1e280) {
            try checks.magnitude(largest: .infinity, what: "the fixed-effect column '\(design.fixed.names[t])'",
                                 span: 0..<formula.text.count)
        }
        let kept = statistics.independentColumns(p: fullCount)
        try checks.observations(statistics.n, fixedEffects: kept.count)
        let names = design.fixed.names
        droppedFixedEffects = names.indices.filter { !kept.contains($0) }.map { names[$0] }
        design.keepFixedColumns(kept)
        let order = design.ordered(levelCounts: states.map(\.usedCount))
        self.states = order.map { states[$0] }
        // Level-constant columns, as indices into the kept columns of X.
        levelConstants = order.map { j in
            statistics.levelConstants[j].compactMap { entry in kept.firstIndex(of: entry.column).map { ($0, entry.values) } }
        }
        for (term, state) in zip(design.terms, self.states) {
            try checks.identifiable(groupingName: term.groupingName, levels: state.usedCount, effects: state.k,
                                    span: term.span, n: statistics.n)
        }
        keptFixed = kept
        self.statistics = statistics
        self.design = design
    }

    /// X'X and X'y of the kept columns.
    var gram: [Double] {
        let p = keptFixed.count, full = statistics.crossXy.count
        var G = [Double](repeating: 0, count: p * p)
        for (c, s) in keptFixed.enumerated() { for (r, t) in keptFixed.enumerated() { G[r + c * p] = statistics.gram[t + s * full] } }
        return G
    }

    var crossXy: [Double] { keptFixed.map { statistics.crossXy[$0] } }

    /// Sample variance of y over the complete rows.
    var responseVariance: Double {
        let n = Double(statistics.n)
        return max((statistics.yy - statistics.ySum * statistics.ySum / n) / max(n - 1, 1), .leastNormalMagnitude)
    }

    /// Messages about the data (rows and columns dropped), as ``LinearMixedModel`` gives them.
    var dataMessages: [String] {
        FitAssembly.dataMessages(droppedRows: statistics.rowCount - statistics.n, droppedFixedEffects: droppedFixedEffects)
    }
}
