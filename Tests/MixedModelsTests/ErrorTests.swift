import Foundation
import Testing
@testable import MixedModels

/// A model's public functions throw ``LMMError`` only, located where the input says where.
@Suite("LMMError")
struct ErrorTests {
    @Test("an unknown column is a formula error with its span, worded as the parser's")
    func formulaSpan() throws {
        let text = "Reaction ~ 1 + Dayz + (1 + Days | Subject)"
        let formula = try Formula.parse(text)
        let data = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"))
        var thrown: LMMError?
        do {
            _ = try LinearMixedModel(formula: formula, data: data)
        } catch {
            thrown = error  // typed throws: an LMMError
        }
        let error = try #require(thrown)
        guard case .formula(let inner) = error else {
            Issue.record("expected a formula error, got \(error)")
            return
        }
        #expect(error.location == .formula(text, span: 15..<19))
        #expect(error.description == inner.description)
        #expect(error.message.hasPrefix("unknown column 'Dayz'"))
    }

    @Test("variances that do not fit the model name their file")
    func inputFile() throws {
        let (model, _) = try Fixtures.model(for: "sleepstudy_reml")
        let variances = VarianceComponents(entries: [
            VarCorrEntry(grp: "Patient", var1: "(Intercept)", var2: nil, vcov: 1, sdcor: nil),
        ], source: "V.json")
        var thrown: LMMError?
        do { _ = try model.fit(given: variances) } catch { thrown = error }
        let error = try #require(thrown)
        #expect(error.location == .file("V.json", line: nil, column: nil))
        #expect(error.description.hasPrefix("V.json: varcorr[0] (grp 'Patient'): no random-effects term"))
    }

    @Test("an output file that cannot be written is an output error, not bad input")
    func output() throws {
        var outputs = OutputFiles()
        let path = "/nonexistent-directory-\(getpid())/fit.json"
        // The system's reason, not a guess at it (issue 11).
        #expect(throws: LMMError.output(file: "fit.json", reason: "cannot create the output file in its directory: No such file or directory")) {
            try outputs.stage("{}", at: path)
        }
    }

    @Test("a non-finite number is refused as a numerical error naming it")
    func nonFinite() throws {
        let (model, _) = try Fixtures.model(for: "dyestuff_reml")
        var fit = try model.fit()
        fit.randomEffects[0].condSD = .nan
        #expect { try fit.ranefCSV() } throws: { error in
            guard case LMMError.numerical(let message) = error else { return false }
            return message.contains("non-finite number") && message.contains("ranef Batch (Intercept)")
        }
        #expect(throws: LMMError.self) { try fit.jsonText() }
    }
}
