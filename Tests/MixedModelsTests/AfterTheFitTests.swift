import Foundation
import Testing
@testable import MixedModels

/// Saved models, predictions, residuals and likelihood-ratio tests against lme4 1.1-31
/// (`Fixtures/after_the_fit.json`, made by `R/after_the_fit_reference.R`).
@Suite("After the fit: predict, residuals, anova")
struct AfterTheFitTests {
    struct Reference: Decodable {
        struct Prediction: Decodable {
            var formula: String
            var data: String
            var newdata: String
            var varcorr: [VarCorrEntry]
            var conditional: [Double?]
            var population: [Double?]
        }
        struct Residuals: Decodable {
            var formula: String
            var data: String
            /// lme4's variance components, at which the residuals are compared (beyond the
            /// two optimizers' agreement on θ, ~1e-7 here).
            var varcorr: [VarCorrEntry]
            var row: [Int]
            var fitted: [Double]
            var marginal: [Double]
            var residual: [Double]
            var pearson: [Double]
        }
        struct Anova: Decodable {
            var data: String
            var formulas: [String]
            var npar: [Int]
            var AIC: [Double]
            var BIC: [Double]
            var logLik: [Double]
            var deviance: [Double]
            var Chisq: [Double?]
            var Df: [Int?]
            var p: [Double?]
        }
        var predict: [String: Prediction]
        var residuals: Residuals
        var anova: [String: Anova]
    }

    static let reference: Reference = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("after_the_fit.json")))
        return try! JSONDecoder().decode(Reference.self, from: data)
    }()

    /// Fits `formula` to a fixture and returns the model, the fit and its saved form (written
    /// to JSON and read back, so every test goes through the file format).
    /// With `varcorr`, the fit at those variance components (lme4's, so that predictions can
    /// be compared beyond the optimizers' agreement on θ).
    static func saved(_ formula: String, data: String, varcorr: [VarCorrEntry]? = nil) throws -> (LinearMixedModel, FitResult, SavedModel) {
        let path = Fixtures.path(data)
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: path, for: parsed)
        let model = try LinearMixedModel(formula: parsed, data: table)
        let result = try varcorr.map { try model.fit(given: VarianceComponents(entries: $0)) } ?? model.fit(criterion: .reml)
        let saved = try SavedModel(model: model, result: result, data: table, dataPath: path)
        let text = try saved.json.serialized()
        let loaded = try SavedModel.decode(Data(text.utf8), name: "model.lmm")
        #expect(loaded == saved, "the model file round-trips exactly")
        return (model, result, loaded)
    }

    static func readPredictions(_ path: String) throws -> [(row: Int, value: Double?)] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "row,prediction")
        return lines.dropFirst().map { line in
            let parts = line.split(separator: ",")
            return (Int(parts[0])!, parts[1] == "NA" ? nil : Double(parts[1])!)
        }
    }

    static func close(_ a: Double, _ b: Double, _ tolerance: Double) -> Bool {
        abs(a - b) <= tolerance * max(abs(b), 1)
    }

    /// At lme4's variance components the predictions agree to 1e-8; at our own REML optimum
    /// (θ agrees with lme4's to the optimizers' tolerance, ~1e-6) to 1e-6.
    @Test("predict: conditional and population-level, unseen levels, NA rows, against lme4",
          arguments: ["sleepstudy", "penicillin", "machines"], [true, false])
    func predictMatchesLme4(_ name: String, atLme4Variances: Bool) throws {
        let expected = Self.reference.predict[name]!
        let (_, _, saved) = try Self.saved(expected.formula, data: expected.data,
                                           varcorr: atLme4Variances ? expected.varcorr : nil)
        let tolerance = atLme4Variances ? 1e-8 : 1e-6
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (populationLevel, values) in [(false, expected.conditional), (true, expected.population)] {
            let out = directory.appendingPathComponent("pred-\(populationLevel).csv").path
            let summary = try Predictor.predict(saved, newData: Fixtures.path(expected.newdata), output: out,
                                                options: PredictionOptions(populationLevel: populationLevel))
            let rows = try Self.readPredictions(out)
            #expect(rows.count == values.count && summary.rows == values.count)
            #expect(summary.missingRows == values.filter { $0 == nil }.count)
            for (index, (row, value)) in rows.enumerated() {
                #expect(row == index + 1)
                switch (value, values[index]) {
                case (nil, nil): break
                case (let ours?, let theirs?):
                    #expect(Self.close(ours, theirs, tolerance), "\(name) row \(row): \(ours) vs lme4 \(theirs)")
                default: Issue.record("\(name) row \(row): NA in one of lme4 and lmm only")
                }
            }
        }
    }

    @Test("--new-levels error names the column, level and line; no output file")
    func newLevelsError() throws {
        let expected = Self.reference.predict["sleepstudy"]!
        let (_, _, saved) = try Self.saved(expected.formula, data: expected.data)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("pred.csv").path
        #expect {
            try Predictor.predict(saved, newData: Fixtures.path(expected.newdata), output: out,
                                  options: PredictionOptions(newLevels: .error))
        } throws: { error in
            "\(error)" == "sleepstudy_newdata.csv:5:2: level '999' of the grouping factor 'Subject' was not in the fitted data (--new-levels population predicts it at the population level)"
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty, "no temporary file left")
    }

    @Test("predictions stream over chunks: 70,000 rows equal Xβ + Zb row by row")
    func streamsAcrossChunks() throws {
        let (_, result, saved) = try Self.saved("Reaction ~ 1 + Days + (1 + Days | Subject)", data: "sleepstudy.csv")
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("new.csv").path
        let output = directory.appendingPathComponent("pred.csv").path
        let term = saved.terms[0]
        var csv = "Subject,Days,extra\n"
        var expected: [Double?] = []
        let rows = 2 * Predictor.chunkRows + 4_464
        for i in 0..<rows {
            let level = i % (term.levels.count + 1)   // one in 19 rows an unseen subject
            let days = Double(i % 13) * 0.75
            let subject = level < term.levels.count ? term.levels[level] : "new\(i % 7)"
            if i % 1_001 == 5 {
                csv += "\(subject),NA,\(i)\n"
                expected.append(nil)
                continue
            }
            csv += "\(subject),\(days),\(i)\n"
            var value = result.fixedEffects[0] + result.fixedEffects[1] * days
            if level < term.levels.count { value += term.modes[level * 2] + term.modes[level * 2 + 1] * days }
            expected.append(value)
        }
        try csv.write(toFile: input, atomically: true, encoding: .utf8)
        let summary = try Predictor.predict(saved, newData: input, output: output)
        #expect(summary.rows == rows)
        #expect(summary.missingRows == expected.filter { $0 == nil }.count)
        let predicted = try Self.readPredictions(output)
        #expect(predicted.count == rows)
        var worst = 0.0
        for (index, (row, value)) in predicted.enumerated() {
            #expect(row == index + 1)
            switch (value, expected[index]) {
            case (nil, nil): break
            case (let ours?, let theirs?): worst = max(worst, abs(ours - theirs) / abs(theirs))
            default: Issue.record("row \(row): NA mismatch")
            }
        }
        #expect(worst < 1e-13)
    }

    @Test("residuals and fitted values (conditional, marginal, Pearson) with dropped rows keep R's row numbers")
    func residualsMatchLme4() throws {
        let expected = Self.reference.residuals
        let (model, result, _) = try Self.saved(expected.formula, data: expected.data, varcorr: expected.varcorr)
        let fitted = try FittedValues(model: model, result: result)
        #expect(fitted.rows == expected.row)
        for i in expected.row.indices {
            #expect(Self.close(fitted.fitted[i], expected.fitted[i], 1e-8))
            #expect(Self.close(fitted.marginal[i], expected.marginal[i], 1e-8))
            #expect(abs(fitted.residuals[i] - expected.residual[i]) < 1e-8 * 300)
            #expect(abs(fitted.residuals[i] / fitted.sigma - expected.pearson[i]) < 1e-8 * 10)
        }
        let lines = fitted.csv().split(separator: "\n")
        #expect(lines.first == "row,fitted,fitted_marginal,residual,pearson")
        #expect(lines.count == expected.row.count + 1)
        #expect(lines[5].hasPrefix("6,"), "row 5 was dropped, so the fifth observation is row 6")
    }

    @Test("anova: every column of lme4's table to 1e-6", arguments: ["sleepstudy", "penicillin"])
    func anovaMatchesLme4(_ name: String) throws {
        let expected = Self.reference.anova[name]!
        // Given largest first: the table is sorted by npar whatever the order.
        let comparison = try ModelComparison.fit(dataPath: Fixtures.path(expected.data), formulas: expected.formulas.reversed())
        #expect(comparison.rows.map(\.formula) == expected.formulas)
        #expect(comparison.rows.map(\.npar) == expected.npar)
        #expect(comparison.rows.map(\.df) == expected.Df)
        for (i, row) in comparison.rows.enumerated() {
            #expect(Self.close(row.AIC, expected.AIC[i], 1e-6))
            #expect(Self.close(row.BIC, expected.BIC[i], 1e-6))
            #expect(Self.close(row.logLik, expected.logLik[i], 1e-6))
            #expect(Self.close(row.deviance, expected.deviance[i], 1e-6))
            #expect((row.chisq == nil) == (expected.Chisq[i] == nil))
            if let ours = row.chisq, let theirs = expected.Chisq[i] { #expect(Self.close(ours, theirs, 1e-6)) }
            #expect((row.pValue == nil) == (expected.p[i] == nil))
            if let ours = row.pValue, let theirs = expected.p[i] {
                #expect(abs(ours - theirs) <= 1e-6 * theirs, "p \(ours) vs lme4 \(theirs)")
            }
        }
        #expect(comparison.table.contains("npar    AIC    BIC  logLik deviance  Chisq Df Pr(>Chisq)"))
    }

    @Test("anova prints lme4's table (print(anova(m0, m1)) of R 4.2, model names aside)")
    func anovaTableText() throws {
        let sleep = Self.reference.anova["sleepstudy"]!
        let table = try ModelComparison.fit(dataPath: Fixtures.path(sleep.data), formulas: sleep.formulas).table
        #expect(table.contains("""
               npar    AIC    BIC  logLik deviance  Chisq Df Pr(>Chisq)    
            m1    4 1802.1 1814.8 -897.04   1794.1                         
            m2    6 1763.9 1783.1 -875.97   1751.9 42.139  2  7.072e-10 ***
            ---
            Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1
            """), "\(table)")
        let penicillin = Self.reference.anova["penicillin"]!
        let second = try ModelComparison.fit(dataPath: Fixtures.path(penicillin.data), formulas: penicillin.formulas).table
        #expect(second.contains("m1    3 617.63 626.54 -305.81   611.63"), "\(second)")
        #expect(second.contains("m2    4 340.19 352.07 -166.09   332.19 279.44  1  < 2.2e-16 ***"), "\(second)")
    }

    @Test("anova refuses models that are not nested or not fitted to the same rows")
    func anovaChecks() throws {
        let penicillin = Fixtures.path("Penicillin.csv")
        #expect {
            try ModelComparison.fit(dataPath: penicillin, formulas: ["diameter ~ 1 + (1 | plate)", "diameter ~ 1 + (1 | sample)"])
        } throws: { "\($0)".contains("not nested") && "\($0)".contains("'(Intercept)' of 'plate'") }
        let sleepNA = Fixtures.path("sleepstudy_na.csv")
        #expect {
            try ModelComparison.fit(dataPath: sleepNA, formulas: ["Days ~ 1 + (1 | Subject)", "Reaction ~ 1 + Days + (1 | Subject)"])
        } throws: { "\($0)".contains("different responses") }
        // Rows with a missing Reaction are dropped from the second model only.
        let csv = try String(contentsOfFile: sleepNA, encoding: .utf8)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("d.csv").path
        try csv.replacingOccurrences(of: "\"Reaction\"", with: "\"y\"").write(toFile: data, atomically: true, encoding: .utf8)
        #expect {
            try ModelComparison.fit(dataPath: data, formulas: ["y ~ 1 + (1 | Subject)", "y ~ 1 + Days + (1 | Subject)"])
        } throws: { "\($0)".contains("not fitted to the same rows") }
    }

    @Test("χ² upper tail against R's pchisq(x, k, lower.tail = FALSE)")
    func chiSquareUpperTail() {
        let cases: [(x: Double, k: Double, p: Double)] = [
            (3.84, 1, 0.050043521248705224), (10, 5, 0.075235246146512197), (0.5, 7, 0.99944648139042513),
            (300, 3, 9.948758346327708e-65), (25, 30, 0.72503188418059983), (1e-3, 4, 0.99999987504165888),
            (279.44, 1, 9.9455835118276708e-63),
        ]
        for (x, k, p) in cases {
            let ours = ChiSquare.upperTail(x, degreesOfFreedom: k)
            #expect(abs(ours - p) <= 1e-12 * p, "χ²(\(k)) at \(x): \(ours) vs R \(p)")
        }
        // Two degrees of freedom: exactly e^(−x/2).
        for x in [0.1, 1.0, 7.5, 42.0, 600.0] {
            #expect(abs(ChiSquare.upperTail(x, degreesOfFreedom: 2) - exp(-x / 2)) <= 1e-13 * exp(-x / 2))
        }
        #expect(ChiSquare.upperTail(0, degreesOfFreedom: 3) == 1)
        #expect(abs(RegularizedGamma.lower(a: 2.5, x: 1.7) + RegularizedGamma.upper(a: 2.5, x: 1.7) - 1) < 1e-15)
    }

    @Test("model files: newer version, corrupt, truncated and inconsistent files are clear errors")
    func badModelFiles() throws {
        let (_, _, saved) = try Self.saved("score ~ 1 + Machine + (1 | Worker)", data: "Machines.csv")
        let text = try saved.json.serialized()
        func error(_ text: String) -> String {
            do {
                _ = try SavedModel.decode(Data(text.utf8), name: "m.lmm")
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(error(text.replacingOccurrences(of: "\"version\": \(SavedModel.formatVersion)", with: "\"version\": 7")).contains("format version 7 is newer"))
        #expect(error(String(text.prefix(text.count / 2))).contains("malformed or truncated"))
        #expect(error("{\"hello\": 1}").contains("not an lmm model file"))
        #expect(error(text.replacingOccurrences(of: "\"sigma\": ", with: "\"sigma\": -")).contains("inconsistent model file"))
        #expect(error(text.replacingOccurrences(of: "\"MachineB\"", with: "\"MachineZ\"")).contains("fixed effect 'MachineZ'"))
        var fewer = saved
        fewer.terms[0].modes.removeLast()
        #expect(error(try fewer.json.serialized()).contains("modes for"))
        var shorter = saved
        shorter.jointCovariance?.removeLast()
        #expect(error(try shorter.json.serialized()).contains("joint_covariance is not the finite packed lower triangle"))
    }
}
