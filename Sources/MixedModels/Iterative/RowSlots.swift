import Foundation

/// A term as the row kernels see it: its level codes and effects (nil: intercept only), k,
/// its first coordinate in u and in the slots' partial sums.
struct KernelTerm {
    let codes: UnsafePointer<Int32>
    let effects: UnsafePointer<Double>?
    let k: Int
    let offset: Int
    let secondary: Int
}

/// The owner of one term's row columns: level codes and (unless intercept only) effects,
/// n × k column-major.
final class TermColumns: @unchecked Sendable {
    let codes: UnsafeMutablePointer<Int32>
    let effects: UnsafeMutablePointer<Double>?

    init(n: Int, k: Int, interceptOnly: Bool) {
        codes = .allocate(capacity: max(n, 1))
        codes.initialize(repeating: 0, count: max(n, 1))
        if interceptOnly {
            effects = nil
        } else {
            effects = .allocate(capacity: max(n * k, 1))
            effects!.initialize(repeating: 0, count: max(n * k, 1))
        }
    }

    deinit {
        codes.deallocate()
        effects?.deallocate()
    }
}

/// How a pass over the rows is split: the primary term's levels (rows sorted by them) in a
/// fixed number of slots of about equal rows, fixed by the data alone so that results do not
/// depend on the threads. Each slot keeps its own partial sums of the other terms' coordinates
/// and of X'f (16 right-hand sides wide at most).
struct RowSlots: Sendable {
    let primary: Int
    /// Rows of primary level l: `primaryStart[l] ..< primaryStart[l + 1]`.
    let primaryStart: [Int]
    /// Slot s covers primary levels `levelBounds[s] ..< levelBounds[s + 1]`.
    let levelBounds: [Int]
    /// Per term: its first coordinate in a slot's partial sums (−1 for the primary term).
    let secondaryStart: [Int]
    /// Coordinates of the other terms; X's p follow them in a slot's partial sums.
    let secondaryCount: Int
    /// Doubles of one slot's partial sums: (other coordinates + p) × 16.
    let partialWidth: Int

    var count: Int { levelBounds.count - 1 }
    var partialDoubles: Int { count * partialWidth }

    static let maxSlots = 4
    /// Bytes of partial sums the slots may hold together.
    static let partialBudget = 256 << 20

    init(terms: [MixedModelOperator.TermRows], primary: Int, primaryStart: [Int], n: Int, p: Int) {
        self.primary = primary
        self.primaryStart = primaryStart
        var starts: [Int] = []
        var secondary = 0
        for (j, term) in terms.enumerated() {
            if j == primary {
                starts.append(-1)
            } else {
                starts.append(secondary)
                secondary += term.levelCount * term.k
            }
        }
        secondaryStart = starts
        secondaryCount = secondary
        partialWidth = (secondary + p) * 16
        let levels = primaryStart.count - 1
        var count = min(Self.maxSlots, max(1, n / 32_768), max(levels, 1))
        count = max(1, min(count, Self.partialBudget / max(partialWidth * 8, 1)))
        var bounds = [0]
        var level = 0
        for s in 1..<count {
            let target = n * s / count
            while level < levels && primaryStart[level] < target { level += 1 }
            bounds.append(max(level, bounds.last!))
        }
        bounds.append(levels)
        levelBounds = bounds
    }

    /// The terms other than the primary, as the kernels see them.
    func others(_ terms: [MixedModelOperator.TermRows]) -> [KernelTerm] {
        terms.indices.filter { $0 != primary }.map { j in
            KernelTerm(codes: terms[j].codes, effects: terms[j].columns.effects.map { UnsafePointer($0) }, k: terms[j].k,
                       offset: terms[j].offset, secondary: secondaryStart[j])
        }
    }

    /// The coordinate of the system (u, then β at q) of row a of the partial sums.
    func destinations(_ terms: [MixedModelOperator.TermRows], q: Int) -> @Sendable (Int) -> Int {
        // Each other term's block of the partial sums maps to its block of u.
        let blocks = terms.indices.filter { $0 != primary }.map { (start: secondaryStart[$0], offset: terms[$0].offset) }
        let secondaryCount = self.secondaryCount
        return { a in
            if a >= secondaryCount { return q + (a - secondaryCount) }
            var shift = 0
            for block in blocks where a >= block.start { shift = block.offset - block.start }
            return a + shift
        }
    }
}
