/// What a streaming (adam) fit holds in memory, estimated before it is allocated (issue 11,
/// item 12): the state of every level (``TermState``: records and Xₗ'Zₗ), the per-level
/// arrays of the statistics pass, of ``Rebalancing`` and of the result, and the buffers of one
/// chunk (the file's chunk, the model's view of it, the minibatch scratch), and OpenBLAS's
/// buffer. The first grows
/// with the number of levels, the second with the file's rows per chunk.
struct StreamingMemory: Sendable, Equatable {
    /// Bytes that grow with the levels.
    var levels: Int
    /// Bytes that grow with the rows per chunk.
    var chunk: Int
    /// The rows per chunk the estimate assumed.
    var rowsPerChunk: Int

    /// With OpenBLAS's buffer (mapped at its first call, in the result's dense algebra; without
    /// it OpenBLAS retries for ever).
    var total: Int { levels + chunk + MemoryBudget.blasBuffer }

    /// One random-effects term, as the estimate sees it.
    struct Term: Sendable {
        var k: Int
        var slotCount: Int
        var interceptOnly: Bool
    }

    /// - Parameters:
    ///   - fixedCount: columns of the full X.
    ///   - fileColumns: columns of the file (a chunk holds each as 8 bytes a row at most).
    ///   - rowsPerChunk: rows of a chunk (at most the file's rows).
    init(terms: [Term], fixedCount: Int, fileColumns: Int, rowsPerChunk: Int) {
        let p = max(fixedCount, 1)
        var levels = 0
        for term in terms {
            levels += TermState.bytes(k: term.k, slotCount: term.slotCount, interceptOnly: term.interceptOnly,
                                      fixedCount: fixedCount)
            // Level-constant candidates of the statistics pass (a slot array per column of X),
            // Rebalancing's sums, counts and steps, and the result's modes, variances and SDs.
            levels += 8 * term.slotCount * (p + 4 + 3 * term.k)
        }
        self.levels = levels
        let rows = max(rowsPerChunk, 1)
        // The file's chunk, y, X, each term's slots and effect columns, and the batch scratch
        // (residuals, touched levels per partition, rows per term).
        let perRow = 8 * fileColumns + 8 * (1 + p) + terms.reduce(0) { $0 + 4 + 8 * ($1.interceptOnly ? 1 : $1.k) }
            + 16 + 4 * (Threading.coreCount + terms.count)
        chunk = rows * perRow
        self.rowsPerChunk = rows
    }

    /// The estimate of a design read from a file of `fileColumns` columns.
    init(design: StreamingDesign, fileColumns: Int, rowsPerChunk: Int) {
        self.init(terms: design.terms.map { Term(k: $0.effectCount, slotCount: $0.grouping.slotCount,
                                                 interceptOnly: $0.effects.isInterceptOnly) },
                  fixedCount: design.fixed.count, fileColumns: fileColumns, rowsPerChunk: rowsPerChunk)
    }

    /// What to try when the level state does not fit.
    static let levelAdvice = "adam holds a record for every level of every grouping factor (its memory grows with the "
        + "levels, not the rows): raise the limit (ulimit -v) or use a machine with more memory"

    /// What to try: a smaller chunk when the chunk buffers are most of it (the rows per chunk that
    /// would fit, `available` given), else ``levelAdvice``.
    func advice(available: Int) -> String {
        if MemoryBudget.blasBuffer > max(levels, chunk) { return "raise the limit (ulimit -v): OpenBLAS's buffer alone is 128 MB" }
        guard chunk > levels else { return Self.levelAdvice }
        let perRow = chunk / rowsPerChunk
        let fitting = max((available - levels - MemoryBudget.blasBuffer) / max(perRow, 1) / 2, 1)
        let suggestion = fitting >= 1_024 ? (fitting / 1_024) * 1_024 : fitting
        return "most of it is one chunk of \(rowsPerChunk) rows: convert the data with a smaller chunk "
            + "(lmm convert DATA.csv DATA.lmmbin --rows-per-chunk \(suggestion)) and fit the .lmmbin file"
    }

    /// Throws ``InsufficientMemory`` when the estimate exceeds what is available.
    func check(available: Int? = MemoryBudget.available()) throws {
        guard let available, total > available else { return }
        throw InsufficientMemory(needed: total, available: available,
                                 what: "the adam fit (level state \(InsufficientMemory.gigabytes(levels)), "
                                     + "chunk buffers \(InsufficientMemory.gigabytes(chunk)), OpenBLAS's buffer 128 MB)",
                                 advice: advice(available: available))
    }
}
