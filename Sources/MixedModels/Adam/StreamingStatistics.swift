/// The pass over the data before the epochs: the number of complete rows, X'X, X'y and y'y,
/// and per level its number of rows nₗ, Zₗ'Zₗ and Xₗ'Zₗ — everything the fitter needs that
/// does not change while it runs (the curvature blocks, β's preconditioner, the standard errors).
struct StreamingStatistics {
    /// Complete rows, and rows in the file.
    var n = 0
    var rowCount = 0
    /// X'X (p × p, column-major, all columns before aliased ones are dropped) and X'y.
    var gram: [Double]
    var crossXy: [Double]
    var yy = 0.0
    var ySum = 0.0
    /// The smallest and largest y, and the first non-finite one (for ``DataChecks/response(constant:firstNonFinite:)``).
    var yMinimum = Double.infinity
    var yMaximum = -Double.infinity
    var firstNonFiniteY: Double?
    /// Σᵢ zᵢₐ² per term and effect (for the default starting variances).
    var effectSquares: [[Double]]
    /// The sum the touch loops leave (kept so that their loads are not optimized away).
    var touched = 0.0
    /// Chunks with no missing value in a column the formula uses (their later loads skip the scan).
    var completeChunks: [Bool] = []
    /// Complete rows of each chunk.
    var chunkRows: [Int] = []
    /// On K processes: complete rows of each rank's part of each chunk (rank r's part of chunk c
    /// at c·K + r; the parts of ``LMMBinaryShardID/rows(ofChunkRows:)``), which the epochs divide
    /// the batches by. Alone (K = 1), ``chunkRows``.
    var partRows: [Int] = []
    /// K.
    var partsPerChunk = 1
    /// Per term with an intercept: the columns of the full X (other than the intercept) that are
    /// constant within each of its levels — group-level covariates, fixed factors that nest the
    /// term — with each slot's value (NaN for an empty slot). ``Rebalancing`` uses them.
    var levelConstants: [[(column: Int, values: [Double])]] = []

    /// Accumulates the statistics of `reader`'s rows into `states` (nₗ, Zₗ'Zₗ, Xₗ'Zₗ) and
    /// returns the rest. `progress` gets the rows read so far after each chunk.
    ///
    /// In a group of K processes (the reader's) the pass is divided: each process reads from
    /// disk and sums what it owns (``LMMBinaryReader/ownChunks``: from a whole file the chunks
    /// c with c mod K = rank, from a shard set its part of every chunk), and the sums are combined
    /// (``combine(states:candidates:group:)``): the same statistics on every process, equal to
    /// one process's up to the order of the additions. Collective: a failure on any process
    /// (a chunk that cannot be read, a value that is not finite) is thrown on every process.
    static func gather(design: StreamingDesign, reader: LMMBinaryReader, states: [TermState],
                       progress: (Int) -> Void) throws -> StreamingStatistics {
        let p = design.fixed.count
        var statistics = StreamingStatistics(gram: .init(repeating: 0, count: p * p), crossXy: .init(repeating: 0, count: p),
                                             effectSquares: states.map { .init(repeating: 0, count: $0.k) })
        let kinds = reader.columns.map(\.kind)
        var binary = LMMBinaryChunk()
        let chunk = DesignChunk(design: design, capacity: reader.chunkCapacity)
        var x = [Double](repeating: 0, count: p)
        var touched = 0.0
        // Candidate level-constant columns: every column but the intercept, for terms with an intercept.
        let intercept = design.fixed.names.firstIndex(of: "(Intercept)")
        var candidates: [(term: Int, column: Int, values: [Double])] = []
        for (j, term) in design.terms.enumerated() where term.effects.names.contains("(Intercept)") {
            for t in 0..<p where t != intercept {
                candidates.append((j, t, [Double](repeating: .nan, count: states[j].slotCount)))
            }
        }
        let group = reader.group
        let own = reader.ownChunks
        statistics.partsPerChunk = group.size
        statistics.partRows = [Int](repeating: 0, count: reader.chunkCount * group.size)
        try group.agreeing {
        for c in own {
            try reader.readChunk(c, into: &binary, shared: false)
            chunk.load(binary, design: design, kinds: kinds)
            let rows = chunk.rowCount, stride = chunk.capacity
            for i in 0..<rows {
                var finite = true
                for t in 0..<p {
                    x[t] = chunk.X[t * stride + i]
                    finite = finite && x[t].isFinite
                }
                let y = chunk.y[i]
                if !finite || !y.isFinite { throw nonFinite(design, chunk, row: i, x: x, y: y) }
                for s in 0..<p {
                    for t in s..<p { statistics.gram[t + s * p] += x[t] * x[s] }
                    statistics.crossXy[s] += x[s] * y
                }
                statistics.yy += y * y
                statistics.ySum += y
                statistics.yMinimum = min(statistics.yMinimum, y)
                statistics.yMaximum = max(statistics.yMaximum, y)
                if !y.isFinite, statistics.firstNonFiniteY == nil { statistics.firstNonFiniteY = y }
            }
            for (j, state) in states.enumerated() where !state.interceptOnly {
                for a in 0..<state.k {
                    let Z = chunk.Z[j] + a * stride
                    if let i = (0..<rows).first(where: { !Z[$0].isFinite }) {
                        throw InputError("the random effect '\(design.terms[j].effects.names[a])' of term \(j + 1) is not finite "
                                         + "(\(Z[i])) in data row \(chunk.sourceRow(i) + 1); a model cannot use an infinite number",
                                         file: design.source)
                    }
                }
            }
            for (j, state) in states.enumerated() {
                let slots = chunk.slots[j], Z = chunk.Z[j], k = state.k
                var blockStart = 0
                while blockStart < rows {
                    let blockEnd = min(blockStart + AdamSolver.touchBlock, rows)
                    // Load the block's records first, so that their cache misses overlap.
                    var sink = 0.0
                    for i in blockStart..<blockEnd {
                        let l = Int(slots[i])
                        sink += state.record(l)[0] + state.crossXZ[l * p * k]
                    }
                    touched += sink
                    for i in blockStart..<blockEnd {
                        let l = Int(slots[i])
                        let record = state.record(l)
                        state.setCount(record, state.count(record) + 1)
                        let cross = state.crossXZ + l * p * k
                        for a in 0..<k {
                            let z = state.interceptOnly ? 1 : Z[a * stride + i]
                            statistics.effectSquares[j][a] += z * z
                            for t in 0..<p { cross[t + a * p] += chunk.X[t * stride + i] * z }
                        }
                        if !state.interceptOnly {
                            var position = state.gram
                            for a in 0..<k {
                                for b in a..<k {
                                    record[position] += Z[b * stride + i] * Z[a * stride + i]
                                    position += 1
                                }
                            }
                        }
                    }
                    blockStart = blockEnd
                }
            }
            for c in candidates.indices where !candidates[c].values.isEmpty {
                let slots = chunk.slots[candidates[c].term], column = chunk.X + candidates[c].column * stride
                let constant = candidates[c].values.withUnsafeMutableBufferPointer { values in
                    for i in 0..<rows {
                        let l = Int(slots[i]), x = column[i]
                        if values[l].isNaN { values[l] = x } else if values[l] != x { return false }
                    }
                    return true
                }
                if !constant { candidates[c].values = [] }
            }
            statistics.n += rows
            statistics.countParts(chunk, chunk: c, offset: binary.firstRow - c * reader.rowsPerChunk, rows: reader.rowCount(ofChunk: c))
            statistics.rowCount += binary.rowCount
            // On K processes: this one's rows times K, an estimate of the whole pass's progress.
            progress(min(statistics.rowCount * group.size, reader.rowCount))
        }
        }
        if group.size > 1 { statistics.combine(states: states, candidates: &candidates, group: group) }
        let parts = group.size
        statistics.chunkRows = (0..<reader.chunkCount).map { c in statistics.partRows[c * parts..<(c + 1) * parts].reduce(0, +) }
        statistics.completeChunks = (0..<reader.chunkCount).map { statistics.chunkRows[$0] == reader.rowCount(ofChunk: $0) }
        if statistics.rowCount == 0 {
            throw InputError("no data rows: the file has no rows to fit", file: design.source)
        }
        for s in 0..<p { for t in s..<p { statistics.gram[s + t * p] = statistics.gram[t + s * p] } }
        statistics.touched = touched
        statistics.levelConstants = states.map { _ in [] }
        for candidate in candidates where !candidate.values.isEmpty {
            statistics.levelConstants[candidate.term].append((candidate.column, candidate.values))
        }
        for state in states {
            var used = 0
            for l in 0..<state.slotCount where state.count(state.record(l)) > 0 { used += 1 }
            state.usedCount = used
        }
        return statistics
    }

    /// The columns of X that are linearly independent of the columns before them — what
    /// ``RankDeficiency`` keeps — from X'X: a column is kept when the norm of its residual after
    /// projecting on the kept columns exceeds R's `qr` tolerance (1e-7) times its norm.
    func independentColumns(p: Int) -> [Int] {
        var kept: [Int] = []
        // Cholesky factor of the kept columns' Gram matrix, grown a column at a time.
        var L: [Double] = []
        for j in 0..<p {
            let norm = gram[j + j * p]
            if norm == 0 { continue }
            let m = kept.count
            var row = [Double](repeating: 0, count: m)   // L⁻¹ X_kept'x_j
            for (r, i) in kept.enumerated() {
                var s = gram[i + j * p]
                for c in 0..<r { s -= L[r + c * m] * row[c] }
                row[r] = s / L[r + r * m]
            }
            let residual = norm - row.reduce(0) { $0 + $1 * $1 }
            guard residual > RankDeficiency.tolerance * RankDeficiency.tolerance * norm else { continue }
            // Grow L by one row and column.
            var grown = [Double](repeating: 0, count: (m + 1) * (m + 1))
            for c in 0..<m { for r in 0..<m { grown[r + c * (m + 1)] = L[r + c * m] } }
            for c in 0..<m { grown[m + c * (m + 1)] = row[c] }
            grown[m + m * (m + 1)] = residual.squareRoot()
            L = grown
            kept.append(j)
        }
        return kept
    }
}

extension StreamingStatistics {
    /// The error for row `i` of `chunk`, where the response `y` or a column of `x` is not finite
    /// (an `.lmmbin` file written by another program, or a function's overflow): R's `lmer`
    /// stops on "NA/NaN/Inf in 'x'".
    static func nonFinite(_ design: StreamingDesign, _ chunk: DesignChunk, row i: Int, x: [Double], y: Double) -> InputError {
        let what: String
        if !y.isFinite {
            what = "the response '\(design.formula.response)' is \(y)"
        } else {
            let t = x.firstIndex { !$0.isFinite }!
            what = "the fixed-effect column '\(design.fixed.names[t])' is \(x[t])"
        }
        return InputError("\(what) in data row \(chunk.sourceRow(i) + 1); a model cannot use an infinite number "
                          + "(R stops with \"NA/NaN/Inf in 'x'\")", file: design.source)
    }
}

extension StreamingStatistics {
    /// Adds the complete rows of `chunk` — rows `offset ..<` of chunk `c` of the file, a chunk of
    /// `rows` rows — to the counts of the ranks' parts they fall in (``partRows``).
    mutating func countParts(_ chunk: DesignChunk, chunk c: Int, offset: Int, rows: Int) {
        let parts = partsPerChunk
        guard parts > 1 else {
            partRows[c] += chunk.rowCount
            return
        }
        var r = 0
        for i in 0..<chunk.rowCount {
            let x = offset + chunk.sourceRow(i) - chunk.firstRow
            while x >= rows * (r + 1) / parts { r += 1 }
            partRows[c * parts + r] += 1
        }
    }

    /// Complete rows of the parts of chunk `c` before rank `rank`'s.
    func partStart(_ c: Int, rank: Int) -> Int {
        partRows[c * partsPerChunk..<c * partsPerChunk + rank].reduce(0, +)
    }

    /// Rank `rank`'s part of chunk `c` (of `rows` rows) has no missing value the formula sees.
    func partIsComplete(_ c: Int, rank: Int, rows: Int) -> Bool {
        partRows[c * partsPerChunk + rank] == LMMBinaryShardID(index: rank, count: partsPerChunk).rows(ofChunkRows: rows).count
    }
}
