import Foundation

/// Hutchinson estimates, from Rademacher probes, of what the REML score needs from the
/// inverse M = H⁻¹ (REML: u block of the joint posterior of u and β) or M = A⁻¹ (ML): for
/// each term j the k × k sum `Σₗ Tⱼ Mₗₗ Tⱼ'` over its levels, and `tr(M_uu)`.
///
/// Control variate. With P the per-level blocks of H (``LevelBlocks``) and O = H − P their
/// couplings, `C = P⁻¹ − P⁻¹OP⁻¹` (the first two terms of the Neumann series of H⁻¹) has the
/// same diagonal blocks as P⁻¹ (O has none), known exactly; only `M − C` is probed. A
/// Rademacher probe's error comes from the off-diagonal entries: those of M − C are of second
/// order in the couplings, where those of M are of first. `Cz = 2w − P⁻¹Hw` with `w = P⁻¹z`:
/// one more product per probe.
///
/// The probes are fixed for a fit (common random numbers): the estimated score is then a
/// smooth function of the variance components, Newton's iteration converges to a fixed point,
/// and its Monte Carlo error follows from the spread of the probes.
struct TraceProbes {
    let count: Int
    let seed: UInt64

    /// Fills the first q coordinates of each of `count` probes with ±1 and the rest of the
    /// `dimension` with zeros; probe c draws from its own stream, so the probes do not depend
    /// on how the work is split.
    func fill(q: Int, dimension: Int, into z: UnsafeMutablePointer<Double>) {
        fill(probes: 0..<count, q: q, dimension: dimension, into: z)
    }

    /// Probes `range` (of the `count`) into z, dimension × range.count: the same values as
    /// those columns of ``fill(q:dimension:into:)``.
    func fill(probes range: Range<Int>, q: Int, dimension: Int, into z: UnsafeMutablePointer<Double>) {
        let m = range.count
        for (column, c) in range.enumerated() {
            var generator = SplitMix64(seed: seed &+ 0x5851_F42D_4C95_7F2D &* UInt64(c + 1))
            var bits: UInt64 = 0
            for a in 0..<q {
                if a % 64 == 0 { bits = generator.next() }
                z[a * m + column] = bits & 1 == 0 ? -1 : 1
                bits >>= 1
            }
            for a in q..<dimension { z[a * m + column] = 0 }
        }
    }

    /// The estimates from probes z and solutions x = Mz (dimension × count each).
    struct Estimate {
        /// Per term j: Σₗ Tⱼ Mₗₗ Tⱼ' (k × k, column-major).
        var termSums: [[Double]]
        /// Per term j and probe c: the probe's estimate of the stochastic part (k × k).
        var termSamples: [[[Double]]]
        /// tr(M_uu).
        var trace: Double
        var traceSamples: [Double]
        /// Per term: the estimated per-level blocks Mₗₗ (k × k each, u coordinates).
        var levelBlocks: [[Double]]
        /// Per term: the control variate's part of them, Dₗ⁻¹ (exact), a lower bound of Mₗₗ
        /// in the Loewner order (the inverse of a diagonal block of A is below A⁻¹'s block).
        var blockInverses: [[Double]]
        /// Per term, level l and effect r (at l·k + r): the Monte Carlo standard error of
        /// (Tⱼ Mₗₗ Tⱼ')ᵣᵣ, the diagonal the conditional SDs come from.
        var levelDiagonalErrors: [[Double]]

        /// Standard error of the trace estimate.
        var traceStandardError: Double { Statistics.standardErrorOfMean(traceSamples) }
    }

    /// The estimates built up from blocks of probes and their solutions (the probes in order:
    /// the same sums as from all of them at once).
    final class Accumulator {
        let model: MixedModelOperator
        let blocks: LevelBlocks
        let count: Int
        private var exact: [(sum: [Double], inverses: [Double], trace: Double)]
        private var samples: [[[Double]]]
        private var perLevel: [[Double]]
        private var diagonalSum: [[Double]], diagonalSquares: [[Double]]
        private var traceSamples: [Double]

        init(model: MixedModelOperator, blocks: LevelBlocks, count: Int) {
            self.model = model
            self.blocks = blocks
            self.count = count
            exact = model.terms.indices.map { blocks.summedInverse(term: $0) }
            samples = model.terms.map { [[Double]](repeating: [Double](repeating: 0, count: $0.k * $0.k), count: count) }
            perLevel = exact.map(\.inverses)
            diagonalSum = model.terms.map { [Double](repeating: 0, count: $0.levelCount * $0.k) }
            diagonalSquares = diagonalSum
            traceSamples = [Double](repeating: 0, count: count)
        }

        /// Adds probes `range` (z, dimension × range.count) with their solutions x = Mz, which
        /// are columns `offset ..< offset + range.count` of `x` (dimension × `stride`: the
        /// block of columns they were solved in).
        func add(probes range: Range<Int>, z: UnsafePointer<Double>, solutions x: UnsafePointer<Double>, stride: Int, offset: Int) {
            let m = range.count, N = count
            let includeFixed = blocks.includeFixed
            let dimension = model.dimension(includeFixed: includeFixed)
            let jacobi = BlockJacobiPreconditioner(blocks: blocks)
            let w = Buffer(dimension * m), hw = Buffer(dimension * m)
            jacobi.apply(z, count: m, into: w.pointer)
            model.apply(w.pointer, count: m, includeFixed: includeFixed, workspace: OperatorWorkspace(model: model, count: m),
                        into: hw.pointer)
            jacobi.apply(hw.pointer, count: m, into: hw.pointer)     // P⁻¹Hw, in place
            // x − Cz = x − 2w + P⁻¹Hw, in w's place.
            for a in 0..<dimension {
                for column in 0..<m { w[a * m + column] = x[a * stride + offset + column] - 2 * w[a * m + column] + hw[a * m + column] }
            }
            let difference = w

            for (j, term) in model.terms.enumerated() {
                let k = term.k
                let T = model.templates[j]
                var left = [Double](repeating: 0, count: k), right = [Double](repeating: 0, count: k)
                for l in 0..<term.levelCount {
                    let base = term.layout.start(level: l)
                    for column in 0..<m {
                        let c = range.lowerBound + column
                        for a in 0..<k {
                            traceSamples[c] += z[(base + a) * m + column] * difference[(base + a) * m + column]
                            for b in 0..<k {
                                perLevel[j][l * k * k + a + b * k] += 0.5 * (z[(base + a) * m + column] * difference[(base + b) * m + column]
                                    + z[(base + b) * m + column] * difference[(base + a) * m + column]) / Double(N)
                            }
                        }
                        for r in 0..<k {
                            var sumLeft = 0.0, sumRight = 0.0
                            for a in 0...r {
                                sumLeft += T[r + a * k] * z[(base + a) * m + column]
                                sumRight += T[r + a * k] * difference[(base + a) * m + column]
                            }
                            left[r] = sumLeft
                            right[r] = sumRight
                            diagonalSum[j][l * k + r] += sumLeft * sumRight
                            diagonalSquares[j][l * k + r] += sumLeft * sumRight * sumLeft * sumRight
                        }
                        for s in 0..<k { for r in 0..<k { samples[j][c][r + s * k] += 0.5 * (left[r] * right[s] + left[s] * right[r]) } }
                    }
                }
            }
        }

        /// The estimates from every probe added.
        func estimate() -> Estimate {
            let m = count
            var termSums: [[Double]] = [], levelDiagonalErrors: [[Double]] = []
            var trace = 0.0
            for (j, term) in model.terms.enumerated() {
                let k = term.k
                // The standard error of the mean of the m samples (Tz)ᵣ(T(x − Cz))ᵣ.
                var diagonalErrors = [Double](repeating: 0, count: term.levelCount * k)
                for index in diagonalErrors.indices {
                    let sum = diagonalSum[j][index]
                    let variance = (diagonalSquares[j][index] - sum * sum / Double(m)) / Double(max(m - 1, 1))
                    diagonalErrors[index] = (max(variance, 0) / Double(m)).squareRoot()
                }
                var mean = exact[j].sum
                for c in 0..<m { for index in 0..<(k * k) { mean[index] += samples[j][c][index] / Double(m) } }
                trace += exact[j].trace
                termSums.append(mean)
                levelDiagonalErrors.append(diagonalErrors)
            }
            trace += traceSamples.reduce(0, +) / Double(m)
            return Estimate(termSums: termSums, termSamples: samples, trace: trace, traceSamples: traceSamples,
                            levelBlocks: perLevel, blockInverses: exact.map(\.inverses), levelDiagonalErrors: levelDiagonalErrors)
        }
    }
}

/// Means and their standard errors.
enum Statistics {
    static func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

    /// The standard error of the mean: sample standard deviation / √N.
    static func standardErrorOfMean(_ values: [Double]) -> Double {
        let count = Double(values.count)
        guard count > 1 else { return .infinity }
        let mean = mean(values)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1)
        return (variance / count).squareRoot()
    }
}
