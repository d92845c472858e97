import Testing
@testable import MixedModels

@Suite("Quantiles")
struct QuantilesTests {
    /// R's type 7 from the fully sorted sample (the definition).
    private func reference(_ values: [Double]) -> [Double] {
        let sorted = values.sorted()
        return [0, 0.25, 0.5, 0.75, 1].map { probability in
            let h = Double(sorted.count - 1) * probability
            let low = Int(h.rounded(.down))
            let high = min(low + 1, sorted.count - 1)
            return sorted[low] + (h - Double(low)) * (sorted[high] - sorted[low])
        }
    }

    @Test("the five-point summary by selection equals the sorted sample's, bit for bit (sizes 1 to 2,000, ties, sorted and reversed input)")
    func selectionEqualsSorting() {
        var generator = SplitMix64(seed: 14)
        for count in [1, 2, 3, 4, 5, 7, 10, 101, 1_000, 2_000] {
            let uniform = (0..<count).map { _ in Double.random(in: -3...3, using: &generator) }
            let ties = (0..<count).map { _ in Double(Int.random(in: 0...4, using: &generator)) }
            for sample in [uniform, ties, uniform.sorted(), uniform.sorted().reversed(), [Double](repeating: 1.5, count: count)] {
                #expect(Quantiles.fivePoint(sample) == reference(sample))
            }
        }
        #expect(Quantiles.fivePoint([]) == [])
    }
}
