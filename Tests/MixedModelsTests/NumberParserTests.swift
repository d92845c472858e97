import Foundation
import Testing
@testable import MixedModels

/// `NumberParser` must agree with `Double(String)` bit for bit on everything it accepts.
@Suite struct NumberParserTests {
    private func parse(_ text: String) -> Double? { NumberParser.parse(text) }

    private func expectSameAsSwift(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let expected = Double(text) else {
            Issue.record("test input \(text) is not a Swift Double", sourceLocation: sourceLocation)
            return
        }
        let parsed = parse(text)
        #expect(parsed?.bitPattern == expected.bitPattern, "\(text): \(String(describing: parsed)) vs \(expected)",
                sourceLocation: sourceLocation)
    }

    @Test func ordinaryNumbers() {
        #expect(parse("0") == 0)
        #expect(parse("1.5") == 1.5)
        #expect(parse("-2.25") == -2.25)
        #expect(parse("+3") == 3)
        #expect(parse(".5") == 0.5)
        #expect(parse("5.") == 5)
        #expect(parse("1e3") == 1000)
        #expect(parse("1E-3") == 0.001)
        #expect(parse("2.5e+2") == 250)
        #expect(parse("-0")?.bitPattern == (-0.0).bitPattern)
        #expect(parse("0.000") == 0)
        #expect(parse("00012") == 12)
        #expect(parse("  12.5 ") == 12.5)
        #expect(parse("\t-7\t") == -7)
    }

    @Test func specialValues() {
        #expect(parse("Inf") == .infinity)
        #expect(parse("-Inf") == -.infinity)
        #expect(parse("+inf") == .infinity)
        #expect(parse("INFINITY") == .infinity)
        #expect(parse("NaN")?.isNaN == true)
        #expect(parse("-nan")?.isNaN == true)
        #expect(parse("1e400") == .infinity)
        #expect(parse("-1e400") == -.infinity)
        #expect(parse("1e-400") == 0)
        #expect(parse("1e99999999999999999999") == .infinity)
        #expect(parse("1e-99999999999999999999") == 0)
        #expect(parse("0e99999") == 0)
    }

    @Test func rejectsNonNumbers() {
        for text in ["", " ", "\t", ".", "-", "+", "e5", "1e", "1e+", "1e-", "1.2.3", "0x10", "1,5", "12a", "--1",
                     "+-1", "in", "infinit", "infx", "nanx", "1 2", "- 1", "NA", "1_000", "١٢", "1e5.5", "..5", "5..",
                     "1d5", "0b1", "∞"] {
            #expect(parse(text) == nil, "\(text.debugDescription) is not a number")
        }
    }

    @Test func hardRoundingCases() {
        for text in [
            "9007199254740993", "9007199254740992", "9007199254740995", "18014398509481993",
            "2.2250738585072011e-308", "2.2250738585072012e-308", "2.2250738585072014e-308",
            "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
            "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
            "0.1", "0.2", "0.3", "1e23", "8.98846567431158e307", "5e-324", "1e-323", "3e-324",
            "7.2057594037927933e16", "123456789012345678901234567890", "0.000000000000000000000000000001",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124",
            "1.00000000000000011102230246251565404236316680908203126",
            "4503599627370496.5", "4503599627370497.5", "9999999999999999999", "99999999999999999999",
            "0.99999999999999999999", "12345678.12345678", "1234567812345678e-8", "1e22", "1e-22", "123e20", "123e-20",
            "1.2345678901234567e-300", "6.631236846766476e-316",
        ] {
            expectSameAsSwift(text)
        }
    }

    /// Random doubles printed as Swift prints them (shortest round trip) and with 17, 16, … digits.
    @Test func randomDoublesMatchSwift() {
        var generator = SplitMix64(seed: 1)
        for trial in 0..<60_000 {
            var value = Double(bitPattern: generator.next())
            if !value.isFinite { continue }
            if trial % 3 == 0 { value = Double.random(in: -1000...1000, using: &generator) }
            if trial % 3 == 1 { value = Double.random(in: 0..<1, using: &generator) * pow(10, Double(Int.random(in: -30...30, using: &generator))) }
            let digits = Int.random(in: 1...17, using: &generator)
            for text in [value.description, String(format: "%.17g", value), String(format: "%.*g", digits, value),
                         String(format: "%.*e", digits, value), String(format: "%.*f", Int.random(in: 0...20, using: &generator), value)] {
                expectSameAsSwift(text)
            }
        }
    }

    /// Random digit strings: up to 25 digits (beyond 19 the strtod path), a random decimal point and
    /// exponent, covering the fast path, Eisel-Lemire, subnormals and overflow.
    @Test func randomDecimalStringsMatchSwift() {
        var generator = SplitMix64(seed: 2)
        for _ in 0..<100_000 {
            let count = Int.random(in: 1...25, using: &generator)
            var digits = String((0..<count).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
            if Bool.random(using: &generator) {
                let point = Int.random(in: 0...count, using: &generator)
                digits.insert(".", at: digits.index(digits.startIndex, offsetBy: point))
                if digits == "." { digits = "0." }
            }
            var text = (Bool.random(using: &generator) ? "-" : "") + digits
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: break
            case 1: text += "e\(Int.random(in: -30...30, using: &generator))"
            case 2: text += "e\(Int.random(in: -340...310, using: &generator))"
            default: text += "E+\(Int.random(in: 280...330, using: &generator))"
            }
            expectSameAsSwift(text)
        }
    }

    /// Random strings over number-like characters: accepted exactly when `Double(String)` accepts
    /// them (for this alphabet both follow strtod's decimal grammar), with the same value.
    @Test func randomTextAgreesWithSwiftOnAcceptance() {
        var generator = SplitMix64(seed: 3)
        let alphabet = Array("0123456789012345678901234567890123456789..eE+-infINFtyaN")
        for _ in 0..<200_000 {
            let text = String((0..<Int.random(in: 1...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let swift = Double(text)
            let parsed = parse(text)
            if let swift, swift.isNaN {
                #expect(parsed?.isNaN == true, "\(text)")
            } else {
                #expect(parsed?.bitPattern == swift?.bitPattern, "\(text): \(String(describing: parsed)) vs \(String(describing: swift))")
            }
        }
    }

    @Test func eightDigitHelpers() {
        let digits = Array("12345678".utf8)
        let word = digits.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(NumberParser.isEightDigits(word))
        #expect(NumberParser.eightDigitsValue(word) == 12_345_678)
        for bad in ["1234567a", "/2345678", ":2345678", "1234 678", "1234.678"] {
            let w = Array(bad.utf8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            #expect(!NumberParser.isEightDigits(w), "\(bad)")
        }
    }
}
