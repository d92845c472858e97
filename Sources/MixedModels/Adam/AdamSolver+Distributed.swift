/// The minibatch steps divided over the processes of a group (see ``AdamSolver``): each
/// process accumulates the gradients of its own rows of the batch; the sums over processes are here.
extension AdamSolver {
    /// Term j of a batch whose rows process r holds `rankRows[r]` of, after this process
    /// accumulated its rows' gradients (each partition's levels in `touched`, their gradients in
    /// `acc`): sums the gradients over the processes and takes the Adam steps of every level
    /// touched by any process, the same on every process. Collective: one sum of (rows) × (1 + k)
    /// doubles, process r's segment its levels (index, then k partial sums), ended by index −1
    /// when it touched fewer levels than it has rows.
    func combineTerm(_ j: Int, rankRows: [Int], correction: Double) {
        let view = states[j].view, k = view.k, width = 1 + k, size = group.size
        var offsets = [Int](repeating: 0, count: size + 1)
        for r in 0..<size { offsets[r + 1] = offsets[r] + rankRows[r] * width }
        exchange.removeAll(keepingCapacity: true)
        exchange.append(contentsOf: repeatElement(0, count: offsets[size]))
        var at = offsets[group.rank]
        for q in 0..<partitions {
            let list = touched[q]
            for t in 0..<touchedCounts[q] {
                let l = list[t], record = view.record(l)
                exchange[at] = Double(l)
                for a in 0..<k { exchange[at + 1 + a] = record[view.acc + a] }
                at += width
            }
        }
        if at < offsets[group.rank + 1] { exchange[at] = -1 }
        group.sum(&exchange)

        // Every process's levels, in rank order; a level's first entry replaces what this
        // process accumulated, later ones add. The combined list reuses partition 0's. The
        // mark differs from every batch's stamp (below 2³¹) and from earlier marks.
        precondition(steps < 0x8000_0000, "more than 2³¹ minibatches")
        let mark = steps | 0x8000_0000
        let list = touched[0]
        var listCount = 0
        exchange.withUnsafeBufferPointer { message in
            for r in 0..<size {
                var at = offsets[r]
                while at < offsets[r + 1] {
                    let code = message[at]
                    if code < 0 { break }
                    let l = Int32(code), record = view.record(l)
                    if view.stamp(record) != mark {
                        view.setStamp(record, mark)
                        list[listCount] = l
                        listCount += 1
                        for a in 0..<k { record[view.acc + a] = message[at + 1 + a] }
                    } else {
                        for a in 0..<k { record[view.acc + a] += message[at + 1 + a] }
                    }
                    at += width
                }
            }
        }
        // The steps: each level once, so ranges of the list are independent.
        let lambda = states[j].precision[0], curvature = states[j].curvature
        let learningRate = self.learningRate, decay = firstMomentDecay, works = work, parts = partitions
        let total = listCount
        Parallel.forEach(parts, concurrent: concurrent && parts > 1 && total >= 4_096) { q in
            for t in total * q / parts..<total * (q + 1) / parts {
                Self.adamStep(view, view.record(list[t]), scratch: works[q], curvature: curvature, lambda: lambda,
                              learningRate: learningRate, decay: decay, correction: correction)
            }
        }
    }

    /// At the end of an epoch on several processes: each process summed the next anchor's data
    /// gradient over its own rows; this sums it over the processes (collective: one sum of
    /// slots × k doubles per term).
    func combineEpochData() {
        guard group.size > 1 else { return }
        for state in states {
            let k = state.k
            var values = [Double](repeating: 0, count: state.slotCount * k)
            for l in 0..<state.slotCount {
                let record = state.record(l)
                for a in 0..<k { values[l * k + a] = record[state.nextData + a] }
            }
            group.sum(&values)
            for l in 0..<state.slotCount {
                let record = state.record(l)
                for a in 0..<k { record[state.nextData + a] = values[l * k + a] }
            }
        }
    }
}
