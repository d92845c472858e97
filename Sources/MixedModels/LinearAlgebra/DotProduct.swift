/// Σᵢ xᵢyᵢ with eight independent partial sums. Swift keeps a plain `sum += x[i] * y[i]` in
/// order, each multiply-add waiting on the last: 2.6× slower on 200 entries (AMD EPYC Zen 5,
/// release build), which made the triangular inverse's Gram matrices (issue 14) slow. (SIMD4's
/// `addProduct` is slower still, 14×: without FMA in the baseline x86-64 target it rounds once
/// per lane in software.) The order of the additions depends on `count` alone.
@inline(__always)
func dotProduct(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ count: Int) -> Double {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    var i = 0
    while i + 8 <= count {
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
        s4 += x[i + 4] * y[i + 4]
        s5 += x[i + 5] * y[i + 5]
        s6 += x[i + 6] * y[i + 6]
        s7 += x[i + 7] * y[i + 7]
        i += 8
    }
    var sum = ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))
    while i < count {
        sum += x[i] * y[i]
        i += 1
    }
    return sum
}
