/// Sample quantiles as R's `quantile` (type 7) computes them.
enum Quantiles {
    /// Minimum, quartiles and maximum.
    static func fivePoint(_ values: [Double]) -> [Double] {
        guard !values.isEmpty else { return [] }
        let sorted = values.sorted()
        return [0, 0.25, 0.5, 0.75, 1].map { probability in
            let h = Double(sorted.count - 1) * probability
            let low = Int(h.rounded(.down))
            let high = min(low + 1, sorted.count - 1)
            return sorted[low] + (h - Double(low)) * (sorted[high] - sorted[low])
        }
    }
}
