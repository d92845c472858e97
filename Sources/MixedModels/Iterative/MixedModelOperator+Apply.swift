import CLAPACK
import Foundation

/// Workspace for products with H or A, allocated once per count of right-hand sides.
final class OperatorWorkspace {
    let count: Int
    /// q × m (Λv, or Z'f before Λ'), allocated at first use: a product that forms Λv in its
    /// output does not need it.
    var lambdaValues: UnsafeMutablePointer<Double> {
        if let lambdaStorage { return lambdaStorage }
        let storage = UnsafeMutablePointer<Double>.allocate(capacity: max(q * count, 1))
        lambdaStorage = storage
        return storage
    }
    private var lambdaStorage: UnsafeMutablePointer<Double>?
    /// The slots' partial sums of a pass (``RowSlots/partialDoubles``).
    let partials: UnsafeMutablePointer<Double>
    /// Λv padded to two right-hand sides, for a single one (q + p, × 2) and the product's.
    let single: (v: UnsafeMutablePointer<Double>, out: UnsafeMutablePointer<Double>)?
    let n: Int
    let q: Int

    init(model: MixedModelOperator, count: Int) {
        n = model.n
        q = model.q
        self.count = count
        partials = .allocate(capacity: max(model.slots.partialDoubles, 1))
        single = count == 1 ? (.allocate(capacity: 2 * (model.q + model.p) + 2), .allocate(capacity: 2 * (model.q + model.p) + 2)) : nil
    }

    deinit {
        lambdaStorage?.deallocate()
        partials.deallocate()
        if let single {
            single.v.deallocate()
            single.out.deallocate()
        }
    }
}

extension MixedModelOperator {
    /// out ← H v (with the fixed effects) or A v (without): W'Wv + v on the u coordinates.
    /// Λv is formed in `out` itself where the passes over the rows allow it (see
    /// ``crossProduct(_:beta:count:workspace:into:)``), else in the workspace.
    func apply(_ v: UnsafePointer<Double>, count m: Int, includeFixed: Bool, workspace: OperatorWorkspace,
               into out: UnsafeMutablePointer<Double>) {
        precondition(workspace.count == m)
        let lambdaV = Self.passesOverlap(m) ? workspace.lambdaValues : out
        applyLambda(v, count: m, into: lambdaV)
        crossProduct(lambdaV, beta: includeFixed ? v + q * m : nil, count: m, workspace: workspace, into: out)
        applyLambdaTransposed(out, count: m, into: out)
        BlockVectors(dimension: q, count: m, threads: threads).forEach { range in
            for index in range { out[index] += v[index] }
        }
    }

    /// The passes over the rows for m right-hand sides: 16, 8, 4 or 2 columns each (the
    /// smallest that takes what is left, at most 16); the last may overlap the one before (its
    /// columns are computed again by the same operations, to the same values). One column is
    /// done as two lanes of one pass.
    static func columnPasses(_ m: Int) -> [(start: Int, width: Int)] {
        guard m > 1 else { return [(0, 1)] }
        var passes: [(start: Int, width: Int)] = []
        var c0 = 0
        while c0 < m {
            let left = m - c0
            var width = left > 8 ? 16 : left > 4 ? 8 : left > 2 ? 4 : 2
            while width > m { width /= 2 }
            let start = min(c0, m - width)
            passes.append((start, width))
            c0 = start + width
        }
        return passes
    }

    /// Whether a pass of ``columnPasses(_:)`` reads columns an earlier one has written.
    static func passesOverlap(_ m: Int) -> Bool {
        var end = 0
        for pass in columnPasses(m) {
            if pass.start < end { return true }
            end = pass.start + pass.width
        }
        return false
    }

    /// out ← Z'(Zc + Xβ) on the u coordinates (q × m) and, with `beta` (p × m), X'(Zc + Xβ)
    /// on the β ones: the rows' cross-products with coefficients c on Z's columns (no Λ),
    /// summed over the processes (collective).
    ///
    /// `c` may be `out` unless ``passesOverlap(_:)``: a pass reads a level of the primary term
    /// (the one the rows are sorted by) only before it writes that level's result, the other
    /// terms' coordinates are written after every pass's rows are read, and passes over
    /// disjoint columns do not see each other's.
    func crossProduct(_ c: UnsafePointer<Double>, beta: UnsafePointer<Double>?, count m: Int, workspace: OperatorWorkspace,
                      into out: UnsafeMutablePointer<Double>) {
        let includeFixed = beta != nil
        if m == 1, let single = workspace.single {
            // One right-hand side: twice, as two lanes (the kernels work on 2, 4 or 8 at a time).
            let dimension = dimension(includeFixed: includeFixed)
            for a in 0..<q { single.v[2 * a] = c[a]; single.v[2 * a + 1] = c[a] }
            if let beta { for t in 0..<p { single.v[2 * (q + t)] = beta[t]; single.v[2 * (q + t) + 1] = beta[t] } }
            slotProduct(SIMD2<Double>.self, lambdaV: single.v, beta: includeFixed ? single.v + 2 * q : nil, count: 2, column: 0,
                        partials: workspace.partials, into: single.out)
            for a in 0..<dimension { out[a] = single.out[2 * a] }
        } else {
            for (start, width) in Self.columnPasses(m) {
                switch width {
                case 16:
                    slotProduct(SIMD16<Double>.self, lambdaV: c, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                case 8:
                    slotProduct(SIMD8<Double>.self, lambdaV: c, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                case 4:
                    slotProduct(SIMD4<Double>.self, lambdaV: c, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                default:
                    slotProduct(SIMD2<Double>.self, lambdaV: c, beta: beta, count: m, column: start,
                                partials: workspace.partials, into: out)
                }
            }
        }
        // This process's rows gave partial sums: one collective of (q + p) × m values.
        sumOverProcesses(out, count: dimension(includeFixed: includeFixed) * m)
    }

    /// The right-hand sides of the mixed-model equations for responses `responses` (n × m,
    /// row-major): W'r.
    func rightHandSide(_ responses: UnsafePointer<Double>, count m: Int, includeFixed: Bool, workspace: OperatorWorkspace,
                       into out: UnsafeMutablePointer<Double>) {
        transposeProduct(responses, count: m, includeFixed: includeFixed, work: workspace.lambdaValues, into: out)
    }

    /// One pass over the rows for right-hand sides `column ..< column + V.scalarCount`: out ←
    /// Z'(ZΛv + Xβ) on the u coordinates (before Λ') and, with `beta`, X'(ZΛv + Xβ) on the β ones.
    /// Each slot of rows adds its primary levels' sums straight into `out` and the other terms'
    /// (and X's) into its own partial sums, which are then added in slot order.
    private func slotProduct<V: SIMD>(_: V.Type, lambdaV: UnsafePointer<Double>, beta: UnsafePointer<Double>?, count m: Int,
                                      column: Int, partials: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>)
        where V.Scalar == Double {
        let W = V.scalarCount
        let slots = self.slots, n = self.n, p = self.p
        let primaryTerm = terms[slots.primary]
        let kP = primaryTerm.k, primaryOffset = primaryTerm.offset
        let primaryEffects = primaryTerm.columns.effects.map { UnsafePointer($0) }
        let others = slots.others(terms)
        let width = slots.partialWidth
        nonisolated(unsafe) let lambdaV = lambdaV + column, beta = beta.map { $0 + column }, out = out + column
        nonisolated(unsafe) let partials = partials
        let fixedRow = slots.secondaryCount
        let matrix = X
        Parallel.forEach(slots.count, concurrent: slots.count > 1, threads: threads) { s in
            let partial = partials + s * width
            partial.update(repeating: 0, count: width)
            matrix.withUnsafeBufferPointer { X in
            others.withUnsafeBufferPointer { others in
            withUnsafeTemporaryAllocation(of: V.self, capacity: 2 * kP) { scratch in
                let vP = scratch.baseAddress!, acc = vP + kP
                for l in slots.levelBounds[s]..<slots.levelBounds[s + 1] {
                    let baseP = primaryOffset + l * kP
                    for r in 0..<kP {
                        vP[r] = UnsafeRawPointer(lambdaV + (baseP + r) * m).loadUnaligned(as: V.self)
                        acc[r] = V()
                    }
                    for i in slots.primaryStart[l]..<slots.primaryStart[l + 1] {
                        // The other terms' entries a few rows ahead, into the cache (they are
                        // read at random; waiting for them is most of a pass's time).
                        let ahead = min(i + Self.prefetchDistance, n - 1)
                        for t in others {
                            let code = Int(t.codes[ahead])
                            let source = lambdaV + (t.offset + code * t.k) * m, target = partial + (t.secondary + code * t.k) * W
                            for r in 0..<t.k {
                                for line in stride(from: 0, to: W, by: 8) { lmm_prefetch(source + r * m + line) }
                                lmm_prefetch(source + r * m + W - 1)
                            }
                            for line in stride(from: 0, to: t.k * W, by: 8) { lmm_prefetch(target + line) }
                        }
                        var f: V
                        if let E = primaryEffects {
                            f = V()
                            for r in 0..<kP { f += E[i + r * n] * vP[r] }
                        } else {
                            f = vP[0]
                        }
                        for t in others {
                            let code = Int(t.codes[i])
                            if let E = t.effects {
                                let base = (t.offset + code * t.k) * m
                                for r in 0..<t.k { f += E[i + r * n] * UnsafeRawPointer(lambdaV + base + r * m).loadUnaligned(as: V.self) }
                            } else {
                                f += UnsafeRawPointer(lambdaV + (t.offset + code) * m).loadUnaligned(as: V.self)
                            }
                        }
                        if let beta {
                            for t in 0..<p { f += X[i + t * n] * UnsafeRawPointer(beta + t * m).loadUnaligned(as: V.self) }
                        }
                        if let E = primaryEffects {
                            for r in 0..<kP { acc[r] += E[i + r * n] * f }
                        } else {
                            acc[0] += f
                        }
                        for t in others {
                            let code = Int(t.codes[i])
                            let target = UnsafeMutableRawPointer(partial + (t.secondary + code * t.k) * W)
                            if let E = t.effects {
                                for r in 0..<t.k {
                                    let sum = target.load(fromByteOffset: r * W * 8, as: V.self) + E[i + r * n] * f
                                    target.storeBytes(of: sum, toByteOffset: r * W * 8, as: V.self)
                                }
                            } else {
                                target.storeBytes(of: target.load(as: V.self) + f, as: V.self)
                            }
                        }
                        if beta != nil {
                            for t in 0..<p {
                                let target = UnsafeMutableRawPointer(partial + (fixedRow + t) * W)
                                target.storeBytes(of: target.load(as: V.self) + X[i + t * n] * f, as: V.self)
                            }
                        }
                    }
                    for r in 0..<kP { UnsafeMutableRawPointer(out + (baseP + r) * m).storeBytes(of: acc[r], as: V.self) }
                }
            }
            }
            }
        }
        // The other terms' coordinates (and X's) from the slots' partial sums, in slot order.
        let rows = slots.secondaryCount + (beta == nil ? 0 : p)
        let chunks = (rows + Self.levelChunk - 1) / Self.levelChunk
        let destination = slots.destinations(terms, q: q)
        Parallel.forEach(chunks, concurrent: chunks > 1, threads: threads) { chunk in
            for a in (chunk * Self.levelChunk)..<min(rows, (chunk + 1) * Self.levelChunk) {
                var sum = V()
                for s in 0..<slots.count { sum += UnsafeRawPointer(partials + s * width + a * W).load(as: V.self) }
                UnsafeMutableRawPointer(out + destination(a) * m).storeBytes(of: sum, as: V.self)
            }
        }
    }
}
