/// The joint conditional covariance of the estimation errors `(b̂ − b, β̂ − β)` given θ and
/// σ (Henderson's mixed-model equations; notation of Bates et al. 2015): with `u = Λ⁻¹b`,
///
///     A = [ Λ'Z'ZΛ + I   Λ'Z'X ]      Cov(û − u, β̂ − β) = σ² A⁻¹,
///         [ X'ZΛ         X'X   ]
///
/// and `Cov(b̂ − b, β̂ − β) = D σ² A⁻¹ D'` with `D = diag(Λ, I)`. Its β block is lme4's
/// `vcov(m)`; its b block is lme4's `condVar` plus the part due to estimating β. It is what a
/// conditional prediction interval `x'β̂ + z'b̂ ± z·√(v'Cv)`, `v = (z, x)`, needs.
///
/// The matrix is dense, `(q + p)²`: it is computed and stored only up to ``limit``.
enum JointCovariance {
    /// The largest q + p for which the model file stores the joint covariance.
    static let limit = 1_000

    /// The lower triangle of `Cov(b̂ − b, β̂ − β)`, packed column by column (entry (i, j),
    /// i ≥ j, at `j·m − j(j−1)/2 + (i − j)`), the b part in the model file's order (term by
    /// term, level by level, effect by effect), then β. Nil when q + p exceeds ``limit`` or
    /// `A` is not positive definite.
    static func packed(frame: ModelFrame, parameters: CovarianceParameters, theta: [Double], sigmaSquared: Double) -> [Double]? {
        let n = frame.n, p = frame.X.columns
        let terms = frame.randomTerms
        let offsets = terms.reduce(into: [0]) { $0.append($0.last! + $1.columnCount) }
        let q = offsets.last!
        let m = q + p
        guard m <= limit, m > 0 else { return nil }
        let templates = terms.indices.map { parameters.template($0, theta: theta) }

        // A = Σᵢ vᵢvᵢ' + diag(I, 0), vᵢ = (Λ'zᵢ, xᵢ): the rows are already weighted by √wᵢ.
        var A = [Double](repeating: 0, count: m * m)
        var index: [Int] = []
        var value: [Double] = []
        for i in 0..<n {
            index.removeAll(keepingCapacity: true)
            value.removeAll(keepingCapacity: true)
            for (j, term) in terms.enumerated() {
                let k = term.effectCount
                let base = offsets[j] + Int(term.codes[i]) * k
                let T = templates[j]
                for r in 0..<k {
                    // (T'z)_r = Σ_{c ≥ r} T[c, r] z_c
                    var sum = 0.0
                    for c in r..<k { sum += T[c, r] * term.effects.values[c * n + i] }
                    index.append(base + r)
                    value.append(sum)
                }
            }
            for c in 0..<p {
                index.append(q + c)
                value.append(frame.X.values[c * n + i])
            }
            for a in index.indices {
                for b in 0...a {
                    let (r, s) = index[a] >= index[b] ? (index[a], index[b]) : (index[b], index[a])
                    A[r + s * m] += value[a] * value[b]
                }
            }
        }
        for d in 0..<q { A[d + d * m] += 1 }
        let ok = A.withUnsafeMutableBufferPointer { a -> Bool in
            BLAS.potrfLower(n: m, A: a.baseAddress!, lda: m) == 0 && BLAS.potriLower(n: m, A: a.baseAddress!, lda: m) == 0
        }
        guard ok else { return nil }
        for s in 0..<m {
            for r in s..<m {
                A[r + s * m] *= sigmaSquared
                A[s + r * m] = A[r + s * m]
            }
        }
        // D C D': rows, then columns, of each level's block multiplied by Tⱼ.
        var column = [Double](repeating: 0, count: 0)
        for (j, term) in terms.enumerated() {
            let k = term.effectCount
            let T = templates[j]
            column = [Double](repeating: 0, count: k)
            for l in 0..<term.levelCount {
                let base = offsets[j] + l * k
                for s in 0..<m {
                    for r in 0..<k { column[r] = A[base + r + s * m] }
                    for r in 0..<k {
                        var sum = 0.0
                        for c in 0...r { sum += T[r, c] * column[c] }
                        A[base + r + s * m] = sum
                    }
                }
                for s in 0..<m {
                    for r in 0..<k { column[r] = A[s + (base + r) * m] }
                    for r in 0..<k {
                        var sum = 0.0
                        for c in 0...r { sum += T[r, c] * column[c] }
                        A[s + (base + r) * m] = sum
                    }
                }
            }
        }
        var packed = [Double]()
        packed.reserveCapacity(m * (m + 1) / 2)
        for s in 0..<m { for r in s..<m { packed.append(A[r + s * m]) } }
        return packed
    }

    /// Entry (r, s) of a packed lower triangle of order m.
    @inline(__always)
    static func entry(_ packed: [Double], _ m: Int, _ r: Int, _ s: Int) -> Double {
        let (i, j) = r >= s ? (r, s) : (s, r)
        return packed[j * m - j * (j - 1) / 2 + (i - j)]
    }
}
