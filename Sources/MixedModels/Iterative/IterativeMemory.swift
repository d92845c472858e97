/// What an iterative fit allocates beyond the model frame, estimated before it is allocated
/// (issue 11, item 12): the matrix-free operator (a copy of X and y sorted by the primary
/// term's level, each term's codes and effects, the row order and per-level Gram blocks; the
/// frame's rows are released once it is built unless the model keeps them), then
/// the fit's vectors — the solutions of every column (q × (p + 1 + probes), single precision),
/// the conjugate-gradient vectors of one block of columns, the per-level blocks of the two preconditioners,
/// the Gauss–Seidel workspaces — and OpenBLAS's buffer, mapped at the first factorization of X'X.
struct IterativeMemory: Sendable, Equatable {
    var n: Int
    var p: Int
    var q: Int
    /// Σ over terms of levels × k².
    var blockEntries: Int
    /// Σ over terms of k (rows by level, effect values).
    var effectColumns: Int
    var termCount: Int
    /// Variance parameters (average-information columns).
    var parameterCount: Int

    init(n: Int, p: Int, terms: [(levels: Int, k: Int)]) {
        self.n = n
        self.p = p
        q = terms.reduce(0) { $0 + $1.levels * $1.k }
        blockEntries = terms.reduce(0) { $0 + $1.levels * $1.k * $1.k }
        effectColumns = terms.reduce(0) { $0 + $1.k }
        termCount = terms.count
        parameterCount = terms.reduce(1) { $0 + $1.k * ($1.k + 1) / 2 }
    }

    init(frame: ModelFrame) {
        self.init(n: frame.n, p: frame.X.columns, terms: frame.randomTerms.map { ($0.levelCount, $0.effectCount) })
    }

    /// The operator: X and y (orthogonalized copies), per term the codes, the rows by level and
    /// the effect values, and the per-level Gram blocks.
    var operatorBytes: Int {
        8 * n * (p + 1) + termCount * (4 * n + 4 * n + 8) + 8 * n * effectColumns + 8 * q + 8 * blockEntries
    }

    /// The fit with `probes` probe vectors at its peak (see the type's documentation);
    /// `blasMapped`: OpenBLAS's buffer is already mapped (by the approximate start taken when
    /// the model was built), so it is in what the process holds, not in what the fit adds.
    func fitBytes(probes: Int, gaussSeidel: Bool, blasMapped: Bool = false) -> Int {
        let m = p + 1 + probes
        let width = min(IterativeMixedModel.FitState.blockWidth(q: q), m)
        let partials = min(RowSlots.maxSlots * (q + p) * 16, RowSlots.partialBudget / 8)
        // A product forms Λv in its output unless its passes over the rows overlap.
        func vectors(_ base: Int, _ columns: Int) -> Int { (base + (MixedModelOperator.passesOverlap(columns) ? 1 : 0)) * q * columns }
        // Held through the fit: the solutions of every column and of the variates (single
        // precision: the next solves' start), Z'[X y], one evaluation (u, b, c, residuals,
        // Λ'Z'X, M: the last one's are freed before the next is computed), the two
        // preconditioners' blocks and their inverses and the trace's block inverses.
        let held = (q * (m + parameterCount) + 1) / 2 + q * (p + 1) + (3 * q + n + 2 * q * p) + 5 * blockEntries
        // One evaluation: Λ'Z'[X y], c and the trace's sums per level, then a block of columns:
        // the solve's start and solution, its right-hand sides (which become the residuals), the
        // directions and the products (which also hold the preconditioned residuals); then the
        // solutions, the probes (drawn again) and the control variate's two vectors.
        let evaluation = q * (p + 1) + 3 * q + 2 * blockEntries + vectors(4, width) + partials
        // The average-information step: the variates' coefficients and cross-products, the
        // solve's vectors (as above), and a stretch of the variates' and fitted rows; the log
        // determinant's Lanczos vectors for a block of probes.
        let stretch = min(n, 4 * MixedModelOperator.rowChunk)
        let information = 2 * stretch * parameterCount + vectors(5, parameterCount) + partials
        let logDeterminant = vectors(4, min(width, probes)) + partials
        var doubles = held + max(evaluation, information, logDeterminant)
        if gaussSeidel { doubles += (n + 2 * q + p) * width }
        return 8 * doubles + (blasMapped ? 0 : MemoryBudget.blasBuffer)
    }

    /// What to try (`probes`: the fit's, nil before the fit).
    static func advice(probes: Int?) -> String {
        guard let probes else { return "the iterative method holds the data in memory: try --method adam (streaming), or raise the limit (ulimit -v)" }
        return "the iterative method holds the data and \(probes) probe vectors per random effect: "
            + (probes > 8 ? "try fewer --probes, " : "try ") + "--method adam (streaming), or raise the limit (ulimit -v)"
    }

    /// Checks the operator's memory (before it is built).
    func checkOperator(available: Int? = MemoryBudget.available()) throws {
        try MemoryBudget.require(operatorBytes, for: "the iterative method's operator", available: available,
                                 advice: Self.advice(probes: nil))
    }

    /// Checks the fit's memory (before its vectors are allocated), and that its largest buffer can be had.
    func checkFit(probes: Int, gaussSeidel: Bool, blasMapped: Bool = false, available: Int? = MemoryBudget.available()) throws {
        let what = "the iterative fit with \(probes) probes"
        try MemoryBudget.require(fitBytes(probes: probes, gaussSeidel: gaussSeidel, blasMapped: blasMapped), for: what, available: available,
                                 advice: Self.advice(probes: probes))
        try MemoryBudget.probe(8 * 4 * q * min(IterativeMixedModel.FitState.blockWidth(q: q), p + 1 + probes), for: what, advice: Self.advice(probes: probes))
    }
}
