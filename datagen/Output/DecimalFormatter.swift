import Foundation

/// Writes doubles as decimal text with 9 significant digits, as C's `%.9g` (`1.5`,
/// `-0.123456789`, `2.5e-07`; it agrees with `%.9g` except, rarely, in the last digit of a
/// near-tie), by integer arithmetic on a scaled mantissa — several times faster than
/// `String(format:)` or `description`. Nine digits keep the relative error near 5·10⁻⁹, far
/// below any noise `datagen` adds; R and the CSV reader read the text back.
enum DecimalFormatter {
    /// Longest output: sign, 9 digits, point, `e-308`.
    static let maxLength = 17

    /// `10^k` for k in −330 ... 310, exact for 0 ... 22.
    static let powers: [Double] = (-330...310).map { k in
        (0...22).contains(k) ? exactPower(k) : pow(10, Double(k))
    }
    private static func exactPower(_ k: Int) -> Double {
        var value = 1.0
        for _ in 0..<k { value *= 10 }
        return value
    }

    /// Pairs of digits "00" … "99".
    static let pairs: [UInt8] = {
        var table: [UInt8] = []
        for n in 0..<100 {
            table.append(UInt8(48 + n / 10))
            table.append(UInt8(48 + n % 10))
        }
        return table
    }()

    /// Writes `value` at `out`, returning the byte after it. NaN is written `NA`, infinities
    /// `Inf` and `-Inf`, as R writes them.
    static func write(_ value: Double, to out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        powers.withUnsafeBufferPointer { powers in
            pairs.withUnsafeBufferPointer { pairs in
                write(value, to: out, powers: powers.baseAddress! + 330, pairs: pairs.baseAddress!)
            }
        }
    }

    @inline(__always)
    static func write(_ value: Double, to out: UnsafeMutablePointer<UInt8>, powers: UnsafePointer<Double>,
                      pairs: UnsafePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var p = out
        if value.isNaN { return put(p, "NA") }
        if value < 0 {
            p.pointee = UInt8(ascii: "-")
            p += 1
        }
        let a = abs(value)
        if a.isInfinite { return put(p, "Inf") }
        if a == 0 {
            p.pointee = UInt8(ascii: "0")
            return p + 1
        }
        // Decimal exponent e with 10^e ≤ a < 10^(e+1).
        var e = Int((Double(a.exponent) * 0.301029995663981195).rounded(.down))
        if e + 1 <= 310 && a >= powers[e + 1] { e += 1 } else if e >= -330 && a < powers[e] { e -= 1 }
        // Nine digits: m = round(a · 10^(8−e)) in [10^8, 10^9).
        var scaled: Double
        if 8 - e <= 300 {
            scaled = e <= 8 ? a * powers[8 - e] : a / powers[e - 8]
        } else {
            scaled = a * powers[300] * powers[8 - e - 300]
        }
        var m = UInt64(scaled.rounded(.toNearestOrEven))
        if m >= 1_000_000_000 {
            m = 100_000_000
            e += 1
        } else if m < 100_000_000 {
            m = 100_000_000
        }
        // The nine digits, then how many are significant.
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        var significant = 9
        withUnsafeMutableBytes(of: &digits) { buffer in
            let d = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var rest = m
            var i = 7
            while i >= 1 {
                let pair = Int(rest % 100)
                rest /= 100
                d[i] = pairs[2 * pair]
                d[i + 1] = pairs[2 * pair + 1]
                i -= 2
            }
            d[0] = UInt8(48 + rest)
            while significant > 1 && d[significant - 1] == 48 { significant -= 1 }
        }
        return withUnsafeBytes(of: &digits) { buffer in
            let d = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if e >= 0 && e < 9 {
                // ddd.ddd
                let integer = e + 1
                p.update(from: d, count: integer)
                p += integer
                if significant > integer {
                    p.pointee = UInt8(ascii: ".")
                    (p + 1).update(from: d + integer, count: significant - integer)
                    p += 1 + significant - integer
                }
                return p
            }
            if e < 0 && e >= -4 {
                // 0.000ddd
                p[0] = UInt8(ascii: "0")
                p[1] = UInt8(ascii: ".")
                p += 2
                for _ in 0..<(-e - 1) {
                    p.pointee = UInt8(ascii: "0")
                    p += 1
                }
                p.update(from: d, count: significant)
                return p + significant
            }
            // d.ddde±XX
            p.pointee = d[0]
            p += 1
            if significant > 1 {
                p.pointee = UInt8(ascii: ".")
                (p + 1).update(from: d + 1, count: significant - 1)
                p += significant
            }
            p.pointee = UInt8(ascii: "e")
            p[1] = e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
            p += 2
            let exponent = abs(e)
            if exponent >= 100 {
                p.pointee = UInt8(48 + exponent / 100)
                p += 1
            }
            p[0] = pairs[2 * (exponent % 100)]
            p[1] = pairs[2 * (exponent % 100) + 1]
            return p + 2
        }
    }

    private static func put(_ p: UnsafeMutablePointer<UInt8>, _ text: StaticString) -> UnsafeMutablePointer<UInt8> {
        p.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        return p + text.utf8CodeUnitCount
    }

    /// The text of `value`, for tests and small outputs.
    static func string(_ value: Double) -> String {
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let count = buffer.withUnsafeMutableBufferPointer { $0.baseAddress!.distance(to: write(value, to: $0.baseAddress!)) }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}
