import MixedModels
/// xoshiro256** (Blackman & Vigna 2018), a fast 64-bit generator with 256 bits of state,
/// seeded through SplitMix64 as its authors recommend. Deterministic across runs, so that the
/// same arguments give the same bytes (unlike `SystemRandomNumberGenerator`).
struct Xoshiro256StarStar: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// The generator of stream `stream` for `seed`: independent streams (one for tables, one
    /// for random effects, one for rows) so that changing the number of rows does not change
    /// the random effects.
    init(seed: UInt64, stream: UInt64) {
        var mixer = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotatedLeft(7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3.rotatedLeft(45)
        return result
    }

    /// Uniform on [0, 1), 53 random bits.
    @inline(__always)
    mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// Uniform on (0, 1), for logarithms.
    @inline(__always)
    mutating func openUniform() -> Double {
        (Double(next() >> 12) + 0.5) * 0x1p-52
    }

    /// Uniform integer in 0..<n (Lemire's multiply-shift; the bias, below n/2⁶⁴, is negligible).
    @inline(__always)
    mutating func index(below n: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
    }
}

extension UInt64 {
    @inline(__always)
    func rotatedLeft(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
