/// A block of generated rows, column by column: the response, the numeric covariates, the
/// factor codes. Storage is allocated once and refilled for every block.
final class RowBlock {
    static let capacity = 4096

    var count = 0
    let y: UnsafeMutablePointer<Double>
    let covariates: [UnsafeMutablePointer<Double>]
    let codes: [UnsafeMutablePointer<Int32>]
    /// Scratch: the combination of each row for the term being added.
    let combination: UnsafeMutablePointer<Int>

    init(covariateCount: Int, factorCount: Int) {
        y = .allocate(capacity: Self.capacity)
        covariates = (0..<covariateCount).map { _ in .allocate(capacity: Self.capacity) }
        codes = (0..<factorCount).map { _ in .allocate(capacity: Self.capacity) }
        combination = .allocate(capacity: Self.capacity)
    }

    deinit {
        y.deallocate()
        covariates.forEach { $0.deallocate() }
        codes.forEach { $0.deallocate() }
        combination.deallocate()
    }
}

/// Draws the rows of a ``GenerationPlan`` block by block from the row stream (stream 2 of the
/// seed). In a block, draws are made column by column in a fixed order — factors (parents
/// first), covariates, residuals — so the rows depend only on the seed and the spec, never on
/// the output format.
struct RowGenerator {
    let plan: GenerationPlan
    private var random: Xoshiro256StarStar
    private(set) var rowsLeft: Int
    private let zigguratX: [Double]
    private let zigguratF: [Double]

    init(plan: GenerationPlan) {
        self.plan = plan
        random = Xoshiro256StarStar(seed: plan.spec.seed, stream: 2)
        rowsLeft = plan.spec.rows
        (zigguratX, zigguratF) = NormalSampler.tables
    }

    func makeBlock() -> RowBlock {
        RowBlock(covariateCount: plan.spec.covariates.count, factorCount: plan.spec.factors.count)
    }

    /// Fills `block` with the next rows; false when every row has been generated.
    mutating func next(into block: RowBlock) -> Bool {
        let m = min(RowBlock.capacity, rowsLeft)
        guard m > 0 else { return false }
        rowsLeft -= m
        block.count = m
        let spec = plan.spec

        for f in plan.factorOrder { drawCodes(f, block, m) }
        for (c, covariate) in spec.covariates.enumerated() {
            NormalSampler.fill(UnsafeMutableBufferPointer(start: block.covariates[c], count: m),
                               mean: covariate.mean, sd: covariate.sd, rng: &random)
        }

        let y = block.y
        y.update(repeating: spec.intercept, count: m)
        for (c, covariate) in spec.covariates.enumerated() {
            let x = block.covariates[c], beta = covariate.coefficient
            for i in 0..<m { y[i] += beta * x[i] }
        }
        for (f, effects) in plan.levelEffects.enumerated() {
            guard let effects else { continue }
            let codes = block.codes[f]
            effects.withUnsafeBufferPointer { effect in
                for i in 0..<m { y[i] += effect[Int(codes[i])] }
            }
        }
        for t in plan.terms.indices { addRandomEffects(t, block, m) }
        let sigma = spec.sigma
        zigguratX.withUnsafeBufferPointer { x in
            zigguratF.withUnsafeBufferPointer { f in
                for i in 0..<m { y[i] += sigma * NormalSampler.next(&random, x.baseAddress!, f.baseAddress!) }
            }
        }
        return true
    }

    private mutating func drawCodes(_ f: Int, _ block: RowBlock, _ m: Int) {
        let out = block.codes[f]
        switch plan.samplers[f] {
        case .uniform(let n):
            for i in 0..<m { out[i] = Int32(truncatingIfNeeded: random.index(below: n)) }
        case .alias(let table):
            let n = table.count
            table.columns.withUnsafeBufferPointer { columns in
                for i in 0..<m { out[i] = AliasTable.draw(random.next(), count: n, columns: columns.baseAddress!) }
            }
        case .nested(let parent, let blockStart, let within):
            let parentCodes = block.codes[parent]
            blockStart.withUnsafeBufferPointer { start in
                if let table = within {
                    let n = table.count
                    table.columns.withUnsafeBufferPointer { columns in
                        for i in 0..<m {
                            let p = Int(parentCodes[i])
                            let size = start[p + 1] - start[p]
                            var k: Int32
                            repeat {
                                k = AliasTable.draw(random.next(), count: n, columns: columns.baseAddress!)
                            } while k >= size
                            out[i] = start[p] + k
                        }
                    }
                } else {
                    for i in 0..<m {
                        let p = Int(parentCodes[i])
                        let size = Int(start[p + 1] - start[p])
                        out[i] = start[p] + Int32(truncatingIfNeeded: random.index(below: size))
                    }
                }
            }
        }
    }

    /// Adds `Zⱼ bⱼ` of term `t` to the block's responses and marks the combinations seen.
    private func addRandomEffects(_ t: Int, _ block: RowBlock, _ m: Int) {
        let combination = block.combination
        combination.update(repeating: 0, count: m)
        for (key, stride) in zip(plan.terms[t].keys, plan.terms[t].strides) {
            let codes = block.codes[key]
            for i in 0..<m { combination[i] += Int(codes[i]) * stride }
        }
        // Mark before taking a copy of the term, so that `used` is mutated in place.
        plan.terms[t].used.withUnsafeMutableBufferPointer { used in
            for i in 0..<m { used[combination[i]] = 1 }
        }
        let term = plan.terms[t]
        let y = block.y, k = term.k
        term.b.withUnsafeBufferPointer { b in
            for (e, source) in term.effects.enumerated() {
                if source < 0 {
                    for i in 0..<m { y[i] += b[combination[i] * k + e] }
                } else {
                    let x = block.covariates[source]
                    for i in 0..<m { y[i] += b[combination[i] * k + e] * x[i] }
                }
            }
        }
    }
}
