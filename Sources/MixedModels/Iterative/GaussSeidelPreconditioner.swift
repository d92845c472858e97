import Foundation

/// Symmetric block Gauss–Seidel over the factors: M = (D + L) D⁻¹ (D + L'), with D the
/// blocks of H for each grouping term (block diagonal over its levels, so solved exactly
/// level by level) and X'X for the fixed effects, and L the couplings between them.
/// One application is a forward and a backward sweep from zero — backfitting over the factors
/// (Ghosh, Hastie & Owen 2022), O(n) per factor — and M is symmetric positive definite, so
/// conjugate gradients may use it.
final class GaussSeidelPreconditioner: Preconditioner {
    let blocks: LevelBlocks
    private var workspaces: [Int: (rows: UnsafeMutablePointer<Double>, lambda: UnsafeMutablePointer<Double>, residual: UnsafeMutablePointer<Double>)] = [:]

    init(blocks: LevelBlocks) { self.blocks = blocks }

    deinit {
        for (_, w) in workspaces {
            w.rows.deallocate()
            w.lambda.deallocate()
            w.residual.deallocate()
        }
    }

    private func workspace(_ m: Int) -> (rows: UnsafeMutablePointer<Double>, lambda: UnsafeMutablePointer<Double>, residual: UnsafeMutablePointer<Double>) {
        if let w = workspaces[m] { return w }
        let model = blocks.model
        let w = (rows: UnsafeMutablePointer<Double>.allocate(capacity: max(model.n * m, 1)),
                 lambda: UnsafeMutablePointer<Double>.allocate(capacity: max(model.q * m, 1)),
                 residual: UnsafeMutablePointer<Double>.allocate(capacity: max((model.q + model.p) * m, 1)))
        workspaces[m] = w
        return w
    }

    func apply(_ r: UnsafePointer<Double>, count m: Int, into z: UnsafeMutablePointer<Double>) {
        let model = blocks.model
        let (s, lambda, residual) = workspace(m)
        var order = Array(model.terms.indices)
        if blocks.includeFixed && model.p > 0 { order.append(model.terms.count) }
        for index in 0..<(model.n * m) { s[index] = 0 }

        // Forward sweep: block b sees the blocks before it.
        for (position, b) in order.enumerated() {
            solveBlock(b, r: r, sees: position > 0, s: s, lambda: lambda, residual: residual, count: m, into: z)
            if position < order.count - 1 { addFitted(b, z, sign: 1, s: s, lambda: lambda, count: m) }
        }
        guard order.count > 1 else { return }
        // Backward sweep: the last block is already current; then each block sees all others.
        addFitted(order.last!, z, sign: 1, s: s, lambda: lambda, count: m)
        for b in order.reversed().dropFirst() {
            addFitted(b, z, sign: -1, s: s, lambda: lambda, count: m)
            solveBlock(b, r: r, sees: true, s: s, lambda: lambda, residual: residual, count: m, into: z)
            if b != order.first! { addFitted(b, z, sign: 1, s: s, lambda: lambda, count: m) }
        }
    }

    /// s ± W_b z_b.
    private func addFitted(_ b: Int, _ z: UnsafePointer<Double>, sign: Double, s: UnsafeMutablePointer<Double>,
                           lambda: UnsafeMutablePointer<Double>, count m: Int) {
        let model = blocks.model
        if b == model.terms.count {
            model.rowProduct(lambdaV: lambda, beta: z + model.q * m, count: m, blocks: [b], accumulate: true, sign: sign, into: s)
        } else {
            model.applyLambda(term: b, z, count: m, into: lambda)
            model.rowProduct(lambdaV: lambda, beta: nil, count: m, blocks: [b], accumulate: true, sign: sign, into: s)
        }
    }

    /// z_b ← D_b⁻¹ (r_b − W_b' s).
    private func solveBlock(_ b: Int, r: UnsafePointer<Double>, sees: Bool, s: UnsafePointer<Double>,
                            lambda: UnsafeMutablePointer<Double>, residual: UnsafeMutablePointer<Double>,
                            count m: Int, into z: UnsafeMutablePointer<Double>) {
        let model = blocks.model
        let range: Range<Int>
        if b == model.terms.count {
            range = (model.q * m)..<((model.q + model.p) * m)
            if sees { model.gatherFixed(s, count: m, into: residual + model.q * m) }
        } else {
            let term = model.terms[b]
            range = (term.offset * m)..<((term.offset + term.k * term.levelCount) * m)
            if sees {
                model.gather(term: b, s, count: m, into: lambda)
                model.applyLambdaTransposed(term: b, lambda, count: m, into: residual)
            }
        }
        if sees {
            for index in range { residual[index] = r[index] - residual[index] }
        } else {
            for index in range { residual[index] = r[index] }
        }
        blocks.solve(block: b, residual, count: m, into: z)
    }
}
