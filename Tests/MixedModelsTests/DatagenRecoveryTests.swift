import Foundation
import Testing
@testable import MixedModels

/// The acceptance test of `datagen`: the exact engine fitted to generated data recovers the
/// truth, and the truth file speaks the engine's language (formula, group names, `--variances`).
@Suite("datagen truth recovery")
struct DatagenRecoveryTests {
    typealias Truth = TruthFile

    /// Generates a data set (CSV, and lmmbin when asked) with its truth into `directory`.
    static func generate(_ arguments: [String], binary: Bool = false, in directory: URL) throws -> (csv: String, binary: String, truth: Truth, truthPath: String) {
        let csv = directory.appendingPathComponent("data.csv").path
        let lmmbin = directory.appendingPathComponent("data.lmmbin").path
        let truth = directory.appendingPathComponent("truth.json").path
        let result = try CommandRunner.run("datagen", arguments + ["--out", csv, "--truth", truth, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        if binary {
            let again = try CommandRunner.run("datagen", arguments + ["--out", lmmbin, "--quiet"])
            #expect(again.status == 0, "\(again.stderr)")
        }
        let document = try TruthFile.load(truth)
        return (csv, lmmbin, document, truth)
    }

    @Test("REML on 20k users-items rows recovers β within 3 SE and the variance components within 25%")
    func usersItems() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let generated = try Self.generate(["--preset", "users-items", "--rows", "20000",
                                           "--levels", "user=2000,item=200", "--seed", "42"], in: directory)
        let truth = generated.truth
        #expect(truth.formula == "y ~ 1 + x + (1 + x | user) + (1 | item)")
        let formula = try Formula.parse(truth.formula)
        let data = try CSVReader.read(path: generated.csv, for: formula)
        let fit = try LinearMixedModel(formula: formula, data: data).fit(criterion: .reml)

        #expect(fit.nobs == truth.nobs)
        for (name, count) in fit.groups { #expect(truth.ngroups[name] == count, "levels of \(name)") }
        for (j, name) in fit.fixedEffectNames.enumerated() {
            let expected = try #require(truth.fixef[name])
            let z = (fit.fixedEffects[j] - expected) / fit.fixedEffectStandardErrors[j]
            #expect(abs(z) <= 3, "\(name): \(fit.fixedEffects[j]) ± \(fit.fixedEffectStandardErrors[j]), truth \(expected)")
        }
        for entry in truth.varcorr {
            let estimate = try #require(fit.varianceComponents.first {
                $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == entry.var2
            }, "no estimate for \(entry)")
            let label = "\(entry.grp) \(entry.var1 ?? "") \(entry.var2 ?? "")"
            if entry.var2 == nil {
                // Standard deviations, relative.
                #expect(Compare.relative(estimate.sdcor!, entry.sdcor!) <= 0.25, "\(label): SD \(estimate.sdcor!) vs \(entry.sdcor!)")
            } else {
                // Correlations, absolute (the truth is 0).
                #expect(abs(estimate.sdcor! - entry.sdcor!) <= 0.25, "\(label): correlation \(estimate.sdcor!) vs \(entry.sdcor!)")
            }
        }
        #expect(Compare.relative(fit.sigma, truth.sigma) <= 0.05)

        // The truth is a --variances file for this model.
        let given = try LinearMixedModel(formula: formula, data: data)
            .fit(given: VarianceComponents.load(path: generated.truthPath))
        #expect(Compare.relative(given.sigma, truth.sigma) < 1e-12)
    }

    @Test("nested and instructors truths: group names the engine uses; lmmbin and CSV give the same model",
          arguments: [["--preset", "nested", "--rows", "4000", "--levels", "school=20,class=200"],
                      ["--preset", "instructors", "--rows", "6000"]])
    func groupNames(_ arguments: [String]) throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let generated = try Self.generate(arguments + ["--seed", "3"], binary: true, in: directory)
        let formula = try Formula.parse(generated.truth.formula)
        let variances = try VarianceComponents.load(path: generated.truthPath)
        let fromCSV = try LinearMixedModel(formula: formula, data: CSVReader.read(path: generated.csv, for: formula))
            .fit(given: variances)
        let fromBinary = try LinearMixedModel(formula: formula, data: LMMBinaryReader(path: generated.binary).readAll())
            .fit(given: variances)
        #expect(fromCSV.fixedEffectNames.sorted() == generated.truth.fixef.names.sorted())
        for (name, count) in fromCSV.groups { #expect(generated.truth.ngroups[name] == count, "levels of \(name)") }
        // The CSV holds 9 significant digits, the lmmbin file exact doubles.
        #expect(Compare.relative(fromBinary.objective, fromCSV.objective) < 1e-7)
        for (a, b) in zip(fromBinary.fixedEffects, fromCSV.fixedEffects) { #expect(abs(a - b) < 1e-6) }
    }
}
