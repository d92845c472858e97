import Foundation
import Testing
@testable import MixedModels

/// Issue 12: streaming Adam evaluates the functions of numeric columns that need no
/// statistics pass, chunk by chunk, `scale` after one pass over the file for its centre and
/// scale, and refuses `poly` and `factor` clearly.
@Suite("Streaming Adam: formula functions")
struct AdamFormulaFunctionTests {
    /// The streamed design equals the one of precomputed columns (Adam's own accuracy on this
    /// design, about 3e-4 in β against the exact solve, is the same for both).
    @Test("functions of the response, the fixed part and a random slope: the design of precomputed columns")
    func functions() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = Fixtures.path("sleepstudy.csv")
        let (exact, streamed) = try AdamTests.models(
            csv: source,
            formula: "log(Reaction) ~ 1 + log(Days + 1) + I(Days^2/10) + exp(-Days) + (1 + sqrt(Days) | Subject)", in: directory)
        // The same columns computed beforehand.
        let table = try CSVReader.read(path: source, categorical: ["Subject"])
        guard case .numeric(let reaction)? = table.columns["Reaction"], case .numeric(let days)? = table.columns["Days"],
              case .categorical(let subject)? = table.columns["Subject"] else {
            Issue.record("sleepstudy columns")
            return
        }
        var csv = "ly,a,b,c,s,Subject\n"
        for i in 0..<table.rowCount {
            let d = days[i]
            csv += "\(Foundation.log(reaction[i])),\(Foundation.log(d + 1)),\(d * d / 10),\(Foundation.exp(-d)),\(d.squareRoot()),\(subject.levels[Int(subject.codes[i])])\n"
        }
        let precomputed = directory.appendingPathComponent("precomputed.csv")
        try csv.write(to: precomputed, atomically: true, encoding: .utf8)
        let (_, plain) = try AdamTests.models(csv: precomputed.path, formula: "ly ~ 1 + a + b + c + (1 + s | Subject)", in: directory)

        let reml = try exact.fit(criterion: .reml)
        let variances = VarianceComponents(entries: reml.varianceComponents, source: "exact fit")
        let adamFit = try streamed.fit(adam: AdamTests.given(variances))
        let renamed = VarianceComponents(entries: reml.varianceComponents.map { entry in
            var entry = entry
            if entry.var1 == "sqrt(Days)" { entry.var1 = "s" }
            if entry.var2 == "sqrt(Days)" { entry.var2 = "s" }
            return entry
        }, source: "exact fit")
        let plainFit = try plain.fit(adam: AdamTests.given(renamed))
        #expect(adamFit.fixedEffectNames == ["(Intercept)", "log(Days + 1)", "I(Days^2/10)", "exp(-Days)"])
        for (ours, theirs) in zip(adamFit.fixedEffects, plainFit.fixedEffects) {
            #expect(Compare.relative(ours, theirs) <= 1e-9, "\(adamFit.fixedEffects) vs \(plainFit.fixedEffects)")
        }
        AdamTests.expectClose(adamFit, try exact.fit(given: variances), beta: 1e-3, blup: 1e-2)
    }

    @Test("scale() and scale(x, scale = FALSE): centre and scale from a pass over the file, as the exact design")
    func scale() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (exact, streamed) = try AdamTests.models(
            csv: Fixtures.path("sleepstudy.csv"),
            formula: "Reaction ~ scale(Days) + scale(log(Days + 1), scale = FALSE) + (1 | Subject)", in: directory)
        let variances = VarianceComponents(entries: try exact.fit(criterion: .reml).varianceComponents, source: "exact fit")
        let exactFit = try exact.fit(given: variances)
        let adamFit = try streamed.fit(adam: AdamTests.given(variances))
        #expect(adamFit.fixedEffectNames == ["(Intercept)", "scale(Days)", "scale(log(Days + 1), scale = FALSE)"])
        AdamTests.expectClose(adamFit, exactFit)
    }

    @Test("functions that need the whole column are refused with the reason", arguments: [
        ("Reaction ~ poly(Days, 2) + (1 | Subject)", "poly() needs the QR decomposition of the whole column", 11..<24),
        ("Reaction ~ factor(Days) + (1 | Subject)", "factor() needs the levels of the whole column", 11..<23),
        ("Reaction ~ Days + offset(Days) + (1 | Subject)", "--method adam does not fit offsets", 18..<30),
        ("Reaction ~ log(Days) + (1 | Subject)", "log() of a non-positive value: Days is 0 in data row 1", 11..<20),
    ])
    func refused(_ formula: String, _ message: String, _ span: Range<Int>) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A formula error, thrown as it is or wrapped by the public API (LMMError.formula).
        var error: FormulaError?
        do {
            _ = try AdamTests.models(csv: Fixtures.path("sleepstudy.csv"), formula: formula, in: directory)
        } catch let thrown as FormulaError {
            error = thrown
        } catch LMMError.formula(let thrown) {
            error = thrown
        }
        #expect(error?.message.hasPrefix(message) == true, "\(String(describing: error))")
        #expect(error?.span == span)
    }
}
