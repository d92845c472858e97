import Foundation
import Testing
@testable import MixedModels

/// Saved models whose formula calls functions (`poly`, `scale`, `I`, `log`, `factor`), has
/// `offset()` terms or an offset column, or codes factors by sum or Helmert contrasts:
/// predictions on new data against lme4 1.1-31 (`Fixtures/predict_transformed.json`, made by
/// `R/after_the_fit_reference.R`), where R's `predict` evaluates `scale` and `poly` with the
/// training data's parameters.
@Suite("Saved models with formula functions, offsets and contrasts")
struct SavedTransformationsTests {
    struct Case: Decodable {
        var formula: String
        var data: String
        var newdata: String
        var contrasts: String
        var offset: String?
        /// What lmm adds to lme4's predictions: lme4 1.1-31 ignores lmer's `offset =` column
        /// on new data (it adds only the formula's offset() terms); lmm adds it.
        var added_offset: [Double]?
        var varcorr: [VarCorrEntry]
        var conditional: [Double?]
        var population: [Double?]

        var options: ModelOptions { ModelOptions(offset: offset, contrasts: ContrastCoding(rawValue: contrasts)!) }
    }

    static let reference: [String: Case] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("predict_transformed.json")))
        return try! JSONDecoder().decode([String: Case].self, from: data)
    }()

    /// The fit of `formula` to a fixture with `options` (at lme4's variance components when
    /// given), saved to JSON and read back.
    static func saved(_ formula: String, data: String, options: ModelOptions,
                      varcorr: [VarCorrEntry]? = nil) throws -> SavedModel {
        let path = Fixtures.path(data)
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: path, for: parsed, options: options)
        let model = try LinearMixedModel(formula: parsed, data: table, options: options)
        let result = try varcorr.map { try model.fit(given: VarianceComponents(entries: $0)) } ?? model.fit(criterion: .reml)
        let saved = try SavedModel(model: model, result: result, data: table, dataPath: path, options: options)
        let loaded = try SavedModel.decode(Data(try saved.json.serialized().utf8), name: "model.lmm")
        #expect(loaded == saved, "the model file round-trips exactly")
        return loaded
    }

    static func predict(_ saved: SavedModel, _ newData: String, populationLevel: Bool = false) throws -> [Double?] {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("pred.csv").path
        _ = try Predictor.predict(saved, newData: newData, output: out, options: PredictionOptions(populationLevel: populationLevel))
        return try AfterTheFitTests.readPredictions(out).map(\.value)
    }

    @Test("predict: conditional and population-level against lme4 to 1e-8 at its variance components",
          arguments: ["poly", "scale", "log", "factor", "offset_term", "offset_column", "machines_sum",
                      "machines_helmert", "penicillin_log"])
    func predictMatchesLme4(_ name: String) throws {
        let expected = Self.reference[name]!
        let saved = try Self.saved(expected.formula, data: expected.data, options: expected.options, varcorr: expected.varcorr)
        #expect(saved.contrasts.rawValue == expected.contrasts && saved.offset == expected.offset)
        for (populationLevel, values) in [(false, expected.conditional), (true, expected.population)] {
            let rows = try Self.predict(saved, Fixtures.path(expected.newdata), populationLevel: populationLevel)
            #expect(rows.count == values.count)
            for (index, (ours, theirs)) in zip(rows, values).enumerated() {
                switch (ours, theirs) {
                case (nil, nil): break
                case (let ours?, var theirs?):
                    theirs += expected.added_offset?[index] ?? 0
                    #expect(AfterTheFitTests.close(ours, theirs, 1e-8), "\(name) row \(index + 1): \(ours) vs lme4 \(theirs)")
                default: Issue.record("\(name) row \(index + 1): NA in one of lme4 and lmm only")
                }
            }
        }
    }

    @Test("the model file records scale()'s and poly()'s training parameters, the contrasts and the offset column")
    func recordsTransformations() throws {
        let saved = try Self.saved("Reaction ~ 1 + poly(Days, 2) + scale(Days) + (1 | Subject)", data: "sleepstudy_weighted.csv",
                                   options: ModelOptions(offset: "o", contrasts: .helmert))
        #expect(saved.offset == "o" && saved.contrasts == .helmert)
        let scale = try #require(saved.transformations.first { $0.variable == "scale(Days)" })
        #expect(scale.kind == .scale && abs(scale.center! - 4.5) < 1e-14 && abs(scale.scale! - (1485.0 / 179).squareRoot()) < 1e-14)
        let poly = try #require(saved.transformations.first { $0.variable == "poly(Days, 2)" })
        #expect(poly.kind == .poly && poly.degree == 2 && poly.alpha?.count == 2 && poly.alpha == [4.5, 4.5])
        #expect(zip(poly.norm2 ?? [], [1, 180, 1485, 9504]).allSatisfy { abs($0 - $1) < 1e-9 * $1 })
    }

    @Test("a log of a non-positive value and an unseen factor() level in new data: errors naming the row; no output")
    func badNewData() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("new.csv").path
        let out = directory.appendingPathComponent("pred.csv").path
        let log = try Self.saved("Reaction ~ 1 + log(Days + 1) + (1 | Subject)", data: "sleepstudy.csv", options: ModelOptions())
        try "Days,Subject\n1,308\n-1,309\n".write(toFile: input, atomically: true, encoding: .utf8)
        #expect { try Predictor.predict(log, newData: input, output: out) } throws: { error in
            "\(error)".contains("log() of a non-positive value: Days + 1 is 0 in data row 2")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        let factor = try Self.saved("Reaction ~ 1 + factor(Days) + (1 | Subject)", data: "sleepstudy.csv", options: ModelOptions())
        try "Days,Subject\n1,308\n12,309\n".write(toFile: input, atomically: true, encoding: .utf8)
        #expect { try Predictor.predict(factor, newData: input, output: out) } throws: { error in
            "\(error)" == "new.csv:3: level '12' of 'factor(Days)' is not among the model's levels (0, 1, 2, 3, 4, 5, 6, 7, 8, 9); a fixed effect cannot be predicted for it"
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a new-data file without the offset column or a column inside a call: error naming the column")
    func missingColumns() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("new.csv").path
        let out = directory.appendingPathComponent("pred.csv").path
        try "Days,Subject\n1,308\n".write(toFile: input, atomically: true, encoding: .utf8)
        for options in [ModelOptions(offset: "o"), ModelOptions()] {
            let formula = options.offset == nil ? "Reaction ~ 1 + Days + offset(o) + (1 | Subject)" : "Reaction ~ 1 + Days + (1 | Subject)"
            let saved = try Self.saved(formula, data: "sleepstudy_weighted.csv", options: options)
            for populationLevel in [false, true] {
                #expect { try Predictor.predict(saved, newData: input, output: out, options: PredictionOptions(populationLevel: populationLevel)) } throws: { error in
                    "\(error)".contains("the model needs column 'o', missing from the header")
                }
            }
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("as.numeric() of a factor cannot be saved: a clear error")
    func numericOfFactorRefused() throws {
        #expect { try Self.saved("score ~ 1 + as.numeric(Machine) + (1 | Worker)", data: "Machines.csv", options: ModelOptions()) } throws: { error in
            "\(error)".contains("the model file cannot record 'as.numeric(Machine)'")
        }
    }

    @Test("a version-2 file (no contrasts, offset or transformations keys) is read as treatment contrasts without offset")
    func versionTwoFile() throws {
        let saved = try Self.saved("score ~ 1 + Machine + (1 | Worker)", data: "Machines.csv", options: ModelOptions())
        guard case .object(let members) = saved.json else { Issue.record("not an object"); return }
        let old = JSONValue.object(members.compactMap { key, value in
            if ["contrasts", "offset", "transformations"].contains(key) { return nil }
            return key == "version" ? (key, .integer(2)) : (key, value)
        })
        let loaded = try SavedModel.decode(Data(try old.serialized().utf8), name: "v2.lmm")
        #expect(loaded == saved)
        #expect(loaded.contrasts == .treatment && loaded.offset == nil && loaded.transformations.isEmpty)
    }

    @Test("end to end: lmm fit --save with poly(), an offset column and sum contrasts, then lmm predict, equal lme4's")
    func commandLine() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["poly", "offset_column", "machines_sum"] {
            let expected = Self.reference[name]!
            let model = directory.appendingPathComponent("\(name).lmm").path
            let out = directory.appendingPathComponent("\(name).csv").path
            var fit = ["fit", Fixtures.path(expected.data), "-f", expected.formula, "--contrasts", expected.contrasts, "--save", model, "-q"]
            if let offset = expected.offset { fit += ["--offset", offset] }
            let fitted = try CommandRunner.run(fit)
            #expect(fitted.status == 0, "\(fitted.stderr)")
            let predicted = try CommandRunner.run(["predict", model, Fixtures.path(expected.newdata), "--out", out])
            #expect(predicted.status == 0, "\(predicted.stderr)")
            let rows = try AfterTheFitTests.readPredictions(out).map(\.value)
            #expect(rows.count == expected.conditional.count)
            // At lmm's own REML optimum: within the optimizers' agreement on θ.
            for (index, (ours, theirs)) in zip(rows, expected.conditional).enumerated() {
                if let ours, let theirs {
                    #expect(AfterTheFitTests.close(ours, theirs + (expected.added_offset?[index] ?? 0), 1e-6), "\(name) row \(index + 1)")
                } else {
                    #expect(ours == nil && theirs == nil)
                }
            }
        }
    }
}
