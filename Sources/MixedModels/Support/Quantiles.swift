/// Sample quantiles as R's `quantile` (type 7) computes them.
enum Quantiles {
    /// Minimum, quartiles and maximum.
    ///
    /// Only the order statistics type 7 interpolates between are found (selection, linear
    /// time), not the whole sorted sample: sorting the 1M residuals of a large fit took about
    /// 150 ms of its summary (Intel Xeon model 207). The values are the sorted sample's.
    static func fivePoint(_ values: [Double]) -> [Double] {
        guard !values.isEmpty else { return [] }
        let probabilities: [Double] = [0, 0.25, 0.5, 0.75, 1]
        let last = values.count - 1
        var ranks = Set<Int>()
        for probability in probabilities {
            let low = Int((Double(last) * probability).rounded(.down))
            ranks.insert(low)
            ranks.insert(min(low + 1, last))
        }
        var work = values
        var statistic: [Int: Double] = [:]
        work.withUnsafeMutableBufferPointer { buffer in
            var start = 0
            for rank in ranks.sorted() {
                // Everything before `start` is ≤ every element from `start` on.
                select(rank, in: buffer, from: start)
                statistic[rank] = buffer[rank]
                start = rank + 1
            }
        }
        return probabilities.map { probability in
            let h = Double(last) * probability
            let low = Int(h.rounded(.down))
            let high = min(low + 1, last)
            return statistic[low]! + (h - Double(low)) * (statistic[high]! - statistic[low]!)
        }
    }

    /// Rearranges `a[start...]` so that `a[k]` holds the value that sorting would put there,
    /// with nothing larger before it and nothing smaller after it (Hoare's selection; median
    /// of three pivots).
    private static func select(_ k: Int, in a: UnsafeMutableBufferPointer<Double>, from start: Int) {
        var low = start, high = a.count - 1
        while high > low {
            let mid = low + (high - low) / 2
            // Median of three to a[mid], then Hoare partition around it.
            if a[mid] < a[low] { a.swapAt(mid, low) }
            if a[high] < a[low] { a.swapAt(high, low) }
            if a[high] < a[mid] { a.swapAt(high, mid) }
            let pivot = a[mid]
            var i = low, j = high
            while i <= j {
                while a[i] < pivot { i += 1 }
                while pivot < a[j] { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now a[low...j] ≤ pivot ≤ a[i...high], and a[j+1..<i] equal the pivot.
            if k <= j {
                high = j
            } else if k >= i {
                low = i
            } else {
                return
            }
        }
    }
}
