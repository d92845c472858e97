/// Where one random-effects term lives, and its blocks of Λ (MixedModels.jl's `ReMat`:
/// `inds`, `λ` and `lmulΛ!`, without the data).
///
/// Term j owns the columns `offset ..< offset + kⱼ·ℓⱼ` of `Z` (and the same entries of u and
/// b): level by level, and within a level its kⱼ effects, so that effect r of level l is
/// column `offset + l·kⱼ + r` (``index(level:effect:)``). Its block of Λθ is the kⱼ × kⱼ
/// lower-triangular `Tⱼ` repeated once per level; `Tⱼ` is stored column-major at
/// `templateOffset` of a templates buffer (``CovarianceParameters/fill(_:into:)``), and its
/// lower triangle, column by column, is θ[`parameterOffset` ..< `parameterOffset` + kⱼ(kⱼ+1)/2].
///
/// The Λ kernels act on one level's block; `lambda(_:_:into:)` and
/// `lambdaTranspose(_:_:into:)` apply Λⱼ and Λⱼ' to the whole term.
struct TermLayout: Sendable, Equatable {
    /// Number of effects per level (k).
    let effectCount: Int
    /// Number of levels of the grouping factor (ℓ).
    let levelCount: Int
    /// First column of the term in `Z`.
    let offset: Int
    /// Where `Tⱼ` starts in a templates buffer.
    let templateOffset: Int
    /// Where the term's parameters start in θ.
    let parameterOffset: Int

    /// Number of columns of `Z` the term owns (k·ℓ).
    var columnCount: Int { effectCount * levelCount }
    /// The term's columns of `Z`.
    var columns: Range<Int> { offset..<(offset + columnCount) }
    /// Number of θ entries of the term: the lower triangle of `Tⱼ`.
    var parameterCount: Int { effectCount * (effectCount + 1) / 2 }

    /// Column of `Z` (entry of u, b) of effect r at level l.
    func index(level l: Int, effect r: Int) -> Int { offset + l * effectCount + r }

    /// Column of `Z` of effect 0 at level l: the start of the level's block.
    func start(level l: Int) -> Int { offset + l * effectCount }

    /// The level of column c of `Z` (c one of the term's columns).
    func level(ofColumn c: Int) -> Int { (c - offset) / effectCount }

    /// `Tⱼ` (k × k, column-major, lower triangular) in a templates buffer.
    func template(_ templates: UnsafePointer<Double>) -> UnsafePointer<Double> { templates + templateOffset }

    // MARK: Λ kernels on one level

    /// `out = Tⱼ' x` for one level's block of k entries (`out` must not alias `x`).
    func lambdaTranspose(level T: UnsafePointer<Double>, _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let k = effectCount
        for r in 0..<k {
            var sum = 0.0
            for r2 in r..<k { sum += T[r2 + r * k] * x[r2] }
            out[r] = sum
        }
    }

    /// `out = Tⱼ x` for one level's block of k entries (`out` must not alias `x`).
    func lambda(level T: UnsafePointer<Double>, _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let k = effectCount
        for r in 0..<k {
            var sum = 0.0
            for r2 in 0...r { sum += T[r + r2 * k] * x[r2] }
            out[r] = sum
        }
    }

    // MARK: Λ kernels on the term

    /// `out = Λⱼ' x` on the term's columns, for vectors of length q indexed by `Z`'s columns.
    func lambdaTranspose(_ templates: UnsafePointer<Double>, _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let T = template(templates)
        for l in 0..<levelCount {
            let base = start(level: l)
            lambdaTranspose(level: T, x + base, into: out + base)
        }
    }

    /// `out = Λⱼ x` on the term's columns, for vectors of length q indexed by `Z`'s columns.
    func lambda(_ templates: UnsafePointer<Double>, _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let T = template(templates)
        for l in 0..<levelCount {
            let base = start(level: l)
            lambda(level: T, x + base, into: out + base)
        }
    }
}

extension TermLayout {
    /// The layouts of terms with these effect and level counts, in order: their columns one
    /// after another, their `Tⱼ` and θ where ``CovarianceParameters`` puts them.
    static func consecutive(effectCounts: [Int], levelCounts: [Int], parameters: CovarianceParameters) -> [TermLayout] {
        var offset = 0
        return effectCounts.indices.map { j in
            defer { offset += effectCounts[j] * levelCounts[j] }
            return TermLayout(effectCount: effectCounts[j], levelCount: levelCounts[j], offset: offset,
                              templateOffset: parameters.templateOffsets[j], parameterOffset: parameters.parameterOffsets[j])
        }
    }
}

extension Array where Element == TermLayout {
    /// Λ' x for a vector of length q (every term).
    func lambdaTranspose(_ templates: UnsafePointer<Double>, _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        for layout in self { layout.lambdaTranspose(templates, x, into: out) }
    }

    /// Λ x for a vector of length q (every term).
    func lambda(_ templates: UnsafePointer<Double>, _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        for layout in self { layout.lambda(templates, x, into: out) }
    }
}
