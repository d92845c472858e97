/// Walker's alias method (Vose's construction): draws from a discrete distribution over
/// `0..<n` in constant time with one 64-bit random number, after an O(n) setup. Used for the
/// level frequencies of grouping factors (Zipf over up to millions of levels) and for
/// categorical covariates with given probabilities.
struct AliasTable {
    /// Column `i` gives `primary` with probability `threshold / 2⁶⁴`, else `alias`; the three
    /// share 16 bytes, so a draw touches one cache line.
    struct Column {
        var threshold: UInt64
        var primary: Int32
        var alias: Int32
    }

    private(set) var columns: [Column]

    var count: Int { columns.count }

    /// A table for `weights` (non-negative, positive sum), whose outcome `i` is reported as
    /// `outcomes[i]` (identity when nil): a permutation of levels costs nothing per draw.
    init(weights: [Double], outcomes: [Int32]? = nil) {
        let n = weights.count
        let total = weights.reduce(0, +)
        var scaled = weights.map { $0 * Double(n) / total }
        let primary = outcomes ?? (0..<n).map { Int32($0) }
        columns = primary.map { Column(threshold: .max, primary: $0, alias: $0) }
        var small: [Int] = [], large: [Int] = []
        for i in 0..<n { if scaled[i] < 1 { small.append(i) } else { large.append(i) } }
        while let s = small.last, let l = large.last {
            small.removeLast()
            columns[s].threshold = Self.threshold(scaled[s])
            columns[s].alias = primary[l]
            scaled[l] -= 1 - scaled[s]
            if scaled[l] < 1 {
                large.removeLast()
                small.append(l)
            }
        }
        // What is left has probability 1 up to rounding: it always gives its own outcome.
        for i in small + large {
            columns[i].threshold = .max
            columns[i].alias = primary[i]
        }
    }

    private static func threshold(_ p: Double) -> UInt64 {
        p <= 0 ? 0 : p >= 1 ? .max : UInt64(p * 0x1p64)
    }

    /// One draw: the high part of `r·n` picks the column, the low part (uniform, and
    /// independent of the column to within n/2⁶⁴) decides between it and its alias.
    @inline(__always)
    static func draw(_ r: UInt64, count n: Int, columns: UnsafePointer<Column>) -> Int32 {
        let (high, low) = r.multipliedFullWidth(by: UInt64(n))
        let column = columns[Int(truncatingIfNeeded: high)]
        return low < column.threshold ? column.primary : column.alias
    }
}
