import Foundation
import Testing
@testable import MixedModels

/// Issue 11, item 10 and the fuzz acceptance: the formula parser and expansion never crash —
/// deep nesting, long chains, long names, random and mutated lme4 formulas give a formula or
/// a clear ``FormulaError``.
@Suite("formula fuzz")
struct FormulaFuzzTests {
    /// Parses and expands `text`: true when accepted; a rejection must carry a message.
    @discardableResult
    static func check(_ text: String) -> Bool {
        do {
            _ = try Formula.parse(text)
            return true
        } catch let error as FormulaError {
            #expect(!error.description.isEmpty)
            return false
        } catch {
            Issue.record("unexpected error type for \(text.prefix(80)): \(error)")
            return false
        }
    }

    @Test("4,600 nested or 5,000 unclosed parentheses: a clear error, no crash")
    func deepNesting() throws {
        for depth in [4_600, 5_000, 100_000] {
            let nested = "y ~ " + String(repeating: "(", count: depth) + "x" + String(repeating: ")", count: depth)
            #expect(throws: FormulaError.self) { try Formula.parse(nested) }
            #expect(throws: FormulaError.self) { try Formula.parse("y ~ " + String(repeating: "(", count: depth)) }
        }
        do {
            _ = try Formula.parse("y ~ " + String(repeating: "(", count: 5_000) + "x")
        } catch let error as FormulaError {
            #expect(error.description.contains("parentheses nested more than \(FormulaParser.maximumNesting) deep"))
        }
        // Within the limit, nesting is fine.
        let ok = "y ~ " + String(repeating: "(", count: 150) + "x" + String(repeating: ")", count: 150) + " + (1 | g)"
        #expect(Self.check(ok))
    }

    @Test("very long chains of operators and very long names: a formula or a clear error")
    func longChains() throws {
        for op in [" + ", ":", "*", " - ", "/"] {
            for count in [300, 1_001, 5_000] {
                Self.check("y ~ " + Array(repeating: "x", count: count).joined(separator: op) + " + (1 | g)")
            }
        }
        #expect(Self.check("y ~ " + (0..<300).map { "x\($0)" }.joined(separator: " + ") + " + (1 | g)"))
        let name = String(repeating: "a", count: 20_000)
        #expect(Self.check("y ~ \(name) + (1 | g)"))
        #expect(throws: FormulaError.self) { try Formula.parse(Array(repeating: "x", count: 50_000).joined(separator: " + ") + " ~ 1") }
    }

    static let seeds = [
        "Reaction ~ 1 + Days + (1 + Days | Subject)", "Reaction ~ Days + (Days || Subject)",
        "y ~ x + (1 | g/h)", "y ~ 1 + (1 | g:h) + (0 + x | g)", "y ~ a * b - a:b + (1 | g)",
        "diameter ~ 1 + (1 | plate) + (1 | sample)", "y ~ 0 + x + (x - 1 | g)", "y ~ (a + b)^2 + (1 | g)",
    ]

    @Test("thousands of random and mutated lme4 formulas: no crash")
    func randomAndMutated() throws {
        var generator = SplitMix(seed: 10)
        let alphabet = Array("yxabgh01 ()|+-*/:~^.,'\"\\$&#!{}[]∂é\u{0}\t\n")
        var accepted = 0
        for k in 0..<6_000 {
            var text: [Character]
            if k % 3 == 0 {
                text = (0..<Int(generator.next() % 60)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            } else {
                text = Array(Self.seeds[Int(generator.next() % UInt64(Self.seeds.count))])
                for _ in 0..<(1 + Int(generator.next() % 4)) {
                    let at = text.isEmpty ? 0 : Int(generator.next() % UInt64(text.count))
                    switch generator.next() % 4 {
                    case 0: if !text.isEmpty { text.remove(at: at) }
                    case 1: text.insert(alphabet[Int(generator.next() % UInt64(alphabet.count))], at: at)
                    case 2: if !text.isEmpty { text[at] = alphabet[Int(generator.next() % UInt64(alphabet.count))] }
                    default: text.insert(contentsOf: Array(String(repeating: "(", count: Int(generator.next() % 400))), at: at)
                    }
                }
            }
            if Self.check(String(text)) { accepted += 1 }
        }
        #expect(accepted > 0)
    }
}
