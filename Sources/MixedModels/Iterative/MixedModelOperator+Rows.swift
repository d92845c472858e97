import Foundation

/// Passes over the rows in the operator's order: W v row by row, Z'f and X'f, and the sums
/// over processes.
extension MixedModelOperator {
    /// f ← Σ over the selected blocks of W_block v_block (n × m), where `lambdaV` holds Λv on
    /// the u coordinates and `v` the β coordinates at q..<q+p. `blocks` lists term indices, with
    /// `terms.count` meaning the fixed effects. With `accumulate` f is added to.
    /// With `columns`, only those right-hand sides are multiplied, and f holds just them
    /// (n × columns.count). With `rows`, only those rows are computed, and f holds just them
    /// (each row's value is the same as in a pass over all rows).
    func rowProduct(lambdaV: UnsafePointer<Double>, beta: UnsafePointer<Double>?, count m: Int, columns: Range<Int>? = nil,
                    rows: Range<Int>? = nil, blocks: [Int], accumulate: Bool, sign: Double = 1,
                    into rowsOut: UnsafeMutablePointer<Double>) {
        let columns = columns ?? 0..<m
        let w = columns.count, c0 = columns.lowerBound
        let rows = rows ?? 0..<self.n
        // Shift the inputs so that column c0 is at offset 0; rows of f are w wide, from row
        // rows.lowerBound (`first`).
        nonisolated(unsafe) let lambdaV = lambdaV + c0, beta = beta.map { $0 + c0 }
        nonisolated(unsafe) let out = rowsOut
        let first = rows.lowerBound
        let n = self.n, p = self.p, X = self.X, terms = self.terms, fixedIndex = terms.count
        let chunks = (rows.count + Self.rowChunk - 1) / Self.rowChunk
        Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
            let start = rows.lowerBound + chunk * Self.rowChunk, end = min(rows.upperBound, start + Self.rowChunk)
            if !accumulate { for index in ((start - first) * w)..<((end - first) * w) { out[index] = 0 } }
            for block in blocks {
                if block == fixedIndex {
                    guard let beta else { continue }
                    X.withUnsafeBufferPointer { X in
                        for t in 0..<p {
                            for i in start..<end {
                                let x = sign * X[i + t * n]
                                for c in 0..<w { out[(i - first) * w + c] += x * beta[t * m + c] }
                            }
                        }
                    }
                    continue
                }
                let term = terms[block]
                let k = term.k, codes = term.codes
                if let E = term.columns.effects {
                    for i in start..<end {
                        let base = term.layout.start(level: Int(codes[i]))
                        for r in 0..<k {
                            let e = sign * E[i + r * n]
                            for c in 0..<w { out[(i - first) * w + c] += e * lambdaV[(base + r) * m + c] }
                        }
                    }
                } else {
                    for i in start..<end {
                        let base = (term.offset + Int(codes[i])) * m
                        for c in 0..<w { out[(i - first) * w + c] += sign * lambdaV[base + c] }
                    }
                }
            }
        }
    }

    /// out_u ← Z_j' f for term j's coordinates (before Λ'): the primary term level by level,
    /// another by partial sums per slot of rows, added in slot order.
    /// With `columns`, f holds just those right-hand sides (n × columns.count).
    func gather(term j: Int, _ f: UnsafePointer<Double>, count m: Int, columns: Range<Int>? = nil,
                into target: UnsafeMutablePointer<Double>) {
        let columns = columns ?? 0..<m
        let w = columns.count
        nonisolated(unsafe) let f = f, out = target + columns.lowerBound
        let term = terms[j], n = self.n, k = term.k, slots = self.slots
        if j == slots.primary {
            Parallel.forEach(slots.count, concurrent: slots.count > 1, threads: threads) { s in
                for l in slots.levelBounds[s]..<slots.levelBounds[s + 1] {
                    let base = term.layout.start(level: l)
                    for r in 0..<k {
                        for c in 0..<w {
                            var sum = 0.0
                            for i in slots.primaryStart[l]..<slots.primaryStart[l + 1] { sum += term.effect(i, r, n: n) * f[i * w + c] }
                            out[(base + r) * m + c] = sum
                        }
                    }
                }
            }
            return
        }
        // Other terms: per slot, the sums over its rows (8 right-hand sides at a time).
        let size = term.levelCount * k
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: max(slots.count * size * min(w, 8), 1))
        defer { partial.deallocate() }
        nonisolated(unsafe) let sums = partial
        for b0 in stride(from: 0, to: w, by: 8) {
            let width = min(8, w - b0)
            Parallel.forEach(slots.count, concurrent: slots.count > 1, threads: threads) { s in
                let target = sums + s * size * width
                target.update(repeating: 0, count: size * width)
                let codes = term.codes
                for i in slots.primaryStart[slots.levelBounds[s]]..<slots.primaryStart[slots.levelBounds[s + 1]] {
                    let base = Int(codes[i]) * k
                    for r in 0..<k {
                        let e = term.effect(i, r, n: n)
                        for c in 0..<width { target[(base + r) * width + c] += e * f[i * w + b0 + c] }
                    }
                }
            }
            let chunks = (size + Self.levelChunk - 1) / Self.levelChunk
            Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
                for a in (chunk * Self.levelChunk)..<min(size, (chunk + 1) * Self.levelChunk) {
                    for c in 0..<width {
                        var sum = 0.0
                        for s in 0..<slots.count { sum += sums[s * size * width + a * width + c] }
                        out[(term.offset + a) * m + b0 + c] = sum
                    }
                }
            }
        }
    }

    /// out ← X'f (p × m), summed over fixed row chunks in order.
    /// With `columns`, f holds just those right-hand sides (n × columns.count).
    func gatherFixed(_ f: UnsafePointer<Double>, count m: Int, columns: Range<Int>? = nil, into target: UnsafeMutablePointer<Double>) {
        let n = self.n, p = self.p
        let columns = columns ?? 0..<m
        let w = columns.count
        let out = target + columns.lowerBound
        let chunks = (n + Self.rowChunk - 1) / Self.rowChunk
        var partial = [Double](repeating: 0, count: chunks * p * w)
        nonisolated(unsafe) let f = f
        partial.withUnsafeMutableBufferPointer { partial in
            nonisolated(unsafe) let partial = partial
            X.withUnsafeBufferPointer { X in
                nonisolated(unsafe) let X = X
                Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
                    let start = chunk * Self.rowChunk, end = min(n, start + Self.rowChunk)
                    let target = partial.baseAddress! + chunk * p * w
                    for t in 0..<p {
                        for i in start..<end {
                            let x = X[i + t * n]
                            for c in 0..<w { target[t * w + c] += x * f[i * w + c] }
                        }
                    }
                }
            }
            for t in 0..<p {
                for c in 0..<w {
                    var sum = 0.0
                    for chunk in 0..<chunks { sum += partial[chunk * p * w + t * w + c] }
                    out[t * m + c] = sum
                }
            }
        }
    }

    /// out ← W'f: Λ'Z'f on the u coordinates and, with `includeFixed`, X'f on the β ones.
    func transposeProduct(_ f: UnsafePointer<Double>, count m: Int, includeFixed: Bool, work: UnsafeMutablePointer<Double>,
                          into out: UnsafeMutablePointer<Double>) {
        for j in terms.indices { gather(term: j, f, count: m, into: work) }
        sumOverProcesses(work, count: q * m)
        applyLambdaTransposed(work, count: m, into: out)
        if includeFixed {
            gatherFixed(f, count: m, into: out + q * m)
            sumOverProcesses(out + q * m, count: p * m)
        }
    }

    /// Replaces `count` values by their sums over the processes (the same on every process);
    /// alone, does nothing. Collective.
    func sumOverProcesses(_ values: UnsafeMutablePointer<Double>, count: Int) {
        guard group.size > 1 else { return }
        var buffer = Array(UnsafeBufferPointer(start: values, count: count))
        group.sum(&buffer)
        buffer.withUnsafeBufferPointer { values.update(from: $0.baseAddress!, count: count) }
    }

    /// `values` summed over the processes (collective; unchanged alone).
    func sumOverProcesses(_ values: [Double]) -> [Double] {
        var values = values
        if group.size > 1 { group.sum(&values) }
        return values
    }
}
