import Foundation

/// The random effects of one term and their optimizer state: one record of ``stride`` doubles
/// per level slot, in one aligned block, so that a row touches one record (one or two cache
/// lines) per term however many fields the fitter keeps. Notation of ``AdamSolver``.
///
/// Record of a level l (k effects), offsets in doubles:
///
///     b[k]        the random effects b_l
///     anchor[k]   b̃_l, the variance-reduction anchor (start of the previous epoch)
///     next[k]     b̂_l, the next anchor (start of this epoch)
///     acc[k]      the minibatch gradient; after the level's update, its step Δb_l
///     nextData[k] Σ z r(b̂) over the rows of l seen this epoch (the data gradient at b̂, ×σ²)
///     data[k]     Σ z r(b̃) over all rows of l (the data gradient at the anchor, ×σ²)
///     moment[k]   Adam's first moment m_l
///     share[k]    (Λ̃ b_l − data)/n_l, the penalty's share per row (k > 1 or slopes only)
///     gram[k(k+1)/2]  Z_l'Z_l, packed lower triangle by columns (k > 1 or slopes only)
///     meta        n_l (Int32, rows of the level) and the stamp of the last batch that touched it
///
/// For a term `(1 | g)` the record is the first seven fields and `meta`: 64 bytes, one cache
/// line; Z_l'Z_l is n_l and the share is computed per row.
final class TermState: @unchecked Sendable {
    let k: Int
    let slotCount: Int
    /// The term is `(1 | g)`: every effect value is 1.
    let interceptOnly: Bool
    let stride: Int
    let anchor: Int, next: Int, acc: Int, nextData: Int, data: Int, moment: Int, share: Int, gram: Int, meta: Int
    let storage: UnsafeMutablePointer<Double>
    /// X_l'Z_l per slot (p × k, column-major, p of the full X): for the standard errors.
    let crossXZ: UnsafeMutablePointer<Double>
    let fixedCount: Int
    /// Slots with at least one row.
    var usedCount = 0
    /// Λ̃ = σ²V⁻¹, the relative precision of the term's effects (k × k, column-major).
    var precision: [Double]

    /// - Throws: ``InsufficientMemory`` when the records cannot be allocated.
    init(k: Int, slotCount: Int, interceptOnly: Bool, fixedCount: Int) throws {
        self.k = k
        self.slotCount = slotCount
        self.interceptOnly = interceptOnly
        self.fixedCount = fixedCount
        anchor = k
        next = 2 * k
        acc = 3 * k
        nextData = 4 * k
        data = 5 * k
        moment = 6 * k
        share = 7 * k
        gram = interceptOnly ? 7 * k : 8 * k
        meta = Self.metaOffset(k: k, interceptOnly: interceptOnly)
        stride = meta + 1
        let what = "the state of \(slotCount) levels × \(k) effects"
        storage = try MemoryBudget.allocateZeroed(MemoryBudget.product(slotCount, stride), for: what, advice: StreamingMemory.levelAdvice)
        do {
            crossXZ = try MemoryBudget.allocateZeroed(MemoryBudget.product(slotCount, fixedCount, k), alignment: 16, for: what,
                                                      advice: StreamingMemory.levelAdvice)
        } catch {
            free(storage)
            throw error
        }
        precision = [Double](repeating: 0, count: k * k)
    }

    deinit {
        free(storage)
        free(crossXZ)
    }

    private static func metaOffset(k: Int, interceptOnly: Bool) -> Int { interceptOnly ? 7 : 8 * k + k * (k + 1) / 2 }

    /// Bytes of a term's state: the records and X_l'Z_l of every slot.
    static func bytes(k: Int, slotCount: Int, interceptOnly: Bool, fixedCount: Int) -> Int {
        8 * slotCount * (metaOffset(k: k, interceptOnly: interceptOnly) + 1 + fixedCount * k)
    }

    @inline(__always) func record(_ l: Int) -> UnsafeMutablePointer<Double> { storage + l * stride }

    /// The record layout as a plain value, for the hot loops (no reference counting).
    var view: TermView {
        TermView(storage: storage, stride: stride, k: k, interceptOnly: interceptOnly, acc: acc,
                 nextData: nextData, data: data, moment: moment, share: share, meta: meta)
    }

    /// Rows of level `l`.
    @inline(__always) func count(_ record: UnsafeMutablePointer<Double>) -> Int32 {
        UnsafeMutableRawPointer(record + meta).load(as: Int32.self)
    }

    @inline(__always) func setCount(_ record: UnsafeMutablePointer<Double>, _ n: Int32) {
        UnsafeMutableRawPointer(record + meta).storeBytes(of: n, as: Int32.self)
    }

    @inline(__always) func stamp(_ record: UnsafeMutablePointer<Double>) -> UInt32 {
        UnsafeMutableRawPointer(record + meta).load(fromByteOffset: 4, as: UInt32.self)
    }

    @inline(__always) func setStamp(_ record: UnsafeMutablePointer<Double>, _ stamp: UInt32) {
        UnsafeMutableRawPointer(record + meta).storeBytes(of: stamp, toByteOffset: 4, as: UInt32.self)
    }

    /// H̃_l = Z_l'Z_l + Λ̃ of the level at `record` into `H` (k × k, column-major, full).
    @inline(__always) func curvature(_ record: UnsafeMutablePointer<Double>, into H: UnsafeMutablePointer<Double>) {
        if interceptOnly {
            H[0] = Double(count(record)) + precision[0]
            return
        }
        var p = gram
        for c in 0..<k {
            for r in c..<k {
                H[r + c * k] = record[p] + precision[r + c * k]
                H[c + r * k] = H[r + c * k]
                p += 1
            }
        }
    }

    /// Sets Λ̃ = σ²V⁻¹ from the covariance V (positive definite; k × k).
    /// - Returns: false when V is not positive definite.
    func setPrecision(covariance V: Matrix, sigmaSquared: Double) -> Bool {
        var L = V.values
        var inverse = [Double](repeating: 0, count: k * k)
        let ok = L.withUnsafeMutableBufferPointer { L in
            guard SmallCholesky.factorInPlace(L.baseAddress!, k) else { return false }
            inverse.withUnsafeMutableBufferPointer { inverse in
                for c in 0..<k {
                    inverse[c + c * k] = 1
                    SmallCholesky.solveLower(L.baseAddress!, k, inverse.baseAddress! + c * k)
                    SmallCholesky.solveUpper(L.baseAddress!, k, inverse.baseAddress! + c * k)
                }
            }
            return true
        }
        guard ok else { return false }
        precision = inverse.map { $0 * sigmaSquared }
        // Exactly symmetric.
        for c in 0..<k { for r in (c + 1)..<max(c + 1, k) { precision[c + r * k] = precision[r + c * k] } }
        return true
    }
}

/// The layout of a ``TermState``'s records, without the object: what the minibatch kernels use.
struct TermView {
    let storage: UnsafeMutablePointer<Double>
    let stride: Int
    let k: Int
    let interceptOnly: Bool
    let acc: Int, nextData: Int, data: Int, moment: Int, share: Int, meta: Int

    @inline(__always) func record(_ l: Int32) -> UnsafeMutablePointer<Double> { storage + Int(l) * stride }

    @inline(__always) func count(_ record: UnsafeMutablePointer<Double>) -> Int32 {
        UnsafeMutableRawPointer(record + meta).load(as: Int32.self)
    }

    @inline(__always) func stamp(_ record: UnsafeMutablePointer<Double>) -> UInt32 {
        UnsafeMutableRawPointer(record + meta).load(fromByteOffset: 4, as: UInt32.self)
    }

    @inline(__always) func setStamp(_ record: UnsafeMutablePointer<Double>, _ stamp: UInt32) {
        UnsafeMutableRawPointer(record + meta).storeBytes(of: stamp, toByteOffset: 4, as: UInt32.self)
    }
}
