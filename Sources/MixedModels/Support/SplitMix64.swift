/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast, seeded generator. Used wherever a
/// run must repeat exactly for a seed — stochastic trace probes, datagen's seeding, test and
/// benchmark data.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    package var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    package mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
