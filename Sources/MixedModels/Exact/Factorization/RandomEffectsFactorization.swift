/// The factorization behind the penalized least-squares core: for θ (through the templates
/// `Tⱼ` of Λθ) it factors `A = Λ'Z'ZΛ + I = P'LL'P` and solves with `L`.
///
/// Two implementations share this contract:
/// - ``SparseCholeskyFactorization``: CHOLMOD on the whole of `A` (the general engine);
/// - ``BlockedDenseFactorization``: the first term's block-diagonal part eliminated level by
///   level and the dense Schur complement of the other terms factored by LAPACK, for crossed
///   models where that complement is dense (the 10k-item block of a users × items model).
///
/// "Factor order" is the order of the rows of `L`: vectors leave ``solveLower(_:columns:)`` in
/// it and enter ``solveUpper(_:)`` in it; both take and return the other side in `A`'s order.
protocol RandomEffectsFactorization: AnyObject {
    /// Refactors for the templates (every `Tⱼ`, column-major, as ``CovarianceParameters``
    /// lays them out) and returns log det(A).
    func factorize(templates: UnsafeBufferPointer<Double>) throws -> Double

    /// `B ← L⁻¹ P B` in place for a q × `columns` column-major block (leading dimension q):
    /// `A`'s order in, factor order out.
    func solveLower(_ B: UnsafeMutablePointer<Double>, columns: Int) throws

    /// `x ← P' L'⁻¹ x` in place for one vector of length q: factor order in, `A`'s order out.
    func solveUpper(_ x: UnsafeMutablePointer<Double>) throws

    /// The entries of `A⁻¹` on the block pattern of `Z'Z` (selected inversion). Overwrites the
    /// factor: refactor before solving again.
    func invert() -> InverseEntries

    /// A one-line description (size, fill, how it factors).
    var summary: String { get }
}

/// Entries of `A⁻¹`, indexed in `A`'s order, valid where `Z'Z` has a stored block
/// (in particular every diagonal block of a level).
protocol InverseEntries {
    func entry(_ i: Int, _ j: Int) -> Double

    /// The block `A⁻¹[rows, columns]` (rows i₀..<i₀+m, columns j₀..<j₀+k), column-major.
    func block(rows i0: Int, _ m: Int, columns j0: Int, _ k: Int, into out: UnsafeMutablePointer<Double>)

    /// `A⁻¹` at every stored value of `Z'Z` (same pattern, same positions), when the
    /// factorization lays it out that way; nil otherwise (then read it through ``block``).
    var valuesOnPattern: [Double]? { get }

    /// For every term j, Σ over its levels of the k_j × k_j block `M_I = Σ_J A⁻¹_IJ (Λ'G)_JI`
    /// (column-major), the part of ∂ log|A| / ∂θ that ``ProfiledGradient`` needs, when the
    /// factorization computes it without A⁻¹ on Z'Z's pattern; nil otherwise.
    var logDetTraceSums: [[Double]]? { get }
}

extension InverseEntries {
    var valuesOnPattern: [Double]? { nil }
    var logDetTraceSums: [[Double]]? { nil }

    func block(rows i0: Int, _ m: Int, columns j0: Int, _ k: Int, into out: UnsafeMutablePointer<Double>) {
        for c in 0..<k { for r in 0..<m { out[r + c * m] = entry(i0 + r, j0 + c) } }
    }
}
