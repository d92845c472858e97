import Foundation
import Testing
@testable import MixedModels

/// The bundled example data (from lme4) and lme4 1.1-31 reference fits.
enum Fixtures {
    static func path(_ name: String) -> String {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name)
        return url.path
    }

    /// An lme4 reference fit (copied from ../shared/reference): the same document as our `--json`.
    typealias Reference = FitReport

    static func reference(_ name: String) throws -> Reference {
        try FitReport.load(path: path(name + ".json"))
    }

    /// The data set behind each reference file.
    static func dataFile(for reference: String) -> String {
        let files = ["sleepstudy": "sleepstudy.csv", "dyestuff": "Dyestuff.csv", "penicillin": "Penicillin.csv",
                     "pastes": "Pastes.csv", "cake": "cake.csv", "machines": "Machines.csv",
                     "ergostool": "ergoStool.csv", "oxide": "Oxide.csv",
                     "synthetic": "", "dyestuff2": "Dyestuff2.csv"]
        if reference.hasPrefix("synthetic_crossed") { return "synthetic_crossed.csv" }
        if reference.hasPrefix("synthetic_three") { return "synthetic_three.csv" }
        return files[String(reference.prefix { $0 != "_" })]!
    }

    /// A model of a reference fit's formula on its data.
    static func model(for name: String) throws -> (LinearMixedModel, Reference) {
        let reference = try reference(name)
        let formula = try Formula.parse(reference.formula)
        let data = try CSVReader.read(path: path(dataFile(for: name)), for: formula)
        return (try LinearMixedModel(formula: formula, data: data), reference)
    }

    /// The references of ../shared/reference (lme4 1.1-31).
    static let sharedReferences = [
        "sleepstudy_reml", "sleepstudy_ml", "sleepstudy_zerocorr_reml",
        "dyestuff_reml", "dyestuff_ml", "penicillin_reml", "penicillin_ml",
    ]

    /// More lme4 example data with nested, interaction and vector-valued grouping, fitted by
    /// ../shared/tools/lme4_reference.R (lme4 1.1-31): Pastes (`batch/cask`), cake
    /// (`recipe:replicate`, a factor × numeric interaction), Machines (crossed with an
    /// interaction factor; a 3 × 3 correlated block of a factor), ergoStool, Oxide (`Lot/Wafer`).
    static let moreReferences = [
        "pastes_reml", "pastes_ml", "cake_reml", "machines_reml", "machines_slopes_reml",
        "ergostool_ml", "oxide_reml", "dyestuff2_reml",
    ] + syntheticReferences

    /// datagen sets fitted by lme4 1.1-31 (`Rscript lme4_reference.R`): users × items with a
    /// random slope (6,000 rows, 600 users, 60 items), and an InstEval-like design with three
    /// crossed factors and a categorical fixed effect (8,000 rows).
    static let syntheticReferences = ["synthetic_crossed_reml", "synthetic_three_ml"]

    static let allReferences = sharedReferences + moreReferences
}

/// Comparisons with the tolerances the issues state.
enum Compare {
    static func relative(_ a: Double, _ b: Double) -> Double {
        abs(a - b) / max(abs(b), .leastNormalMagnitude)
    }

    /// Every BLUP within `tolerance` of its term's largest |BLUP|, and conditional SDs within
    /// `sdTolerance` relative, matching rows by factor, term and level.
    static func ranef(_ ours: [RanefRow], _ theirs: [RanefRow]?, tolerance: Double, sdTolerance: Double,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        guard let theirs else {
            Issue.record("the reference has no ranef", sourceLocation: sourceLocation)
            return
        }
        #expect(ours.count == theirs.count, sourceLocation: sourceLocation)
        var largest: [String: Double] = [:]
        for row in theirs { largest[row.factor + "/" + row.term, default: 0] = max(largest[row.factor + "/" + row.term, default: 0], abs(row.value)) }
        let index = Dictionary(uniqueKeysWithValues: ours.map { ($0.factor + "/" + $0.term + "/" + $0.level, $0) })
        for row in theirs {
            guard let mine = index[row.factor + "/" + row.term + "/" + row.level] else {
                Issue.record("missing random effect \(row.factor) \(row.term) \(row.level)", sourceLocation: sourceLocation)
                continue
            }
            let scale = max(largest[row.factor + "/" + row.term]!, 1e-12)
            #expect(abs(mine.value - row.value) <= tolerance * scale, "BLUP \(row.factor) \(row.term) \(row.level): \(mine.value) vs \(row.value)", sourceLocation: sourceLocation)
            #expect(relative(mine.condSD, row.condSD) <= sdTolerance, "condSD \(row.factor) \(row.term) \(row.level): \(mine.condSD) vs \(row.condSD)", sourceLocation: sourceLocation)
        }
    }

    /// Every `varcorr` entry of `theirs` present in `ours` (matched by group and names), with
    /// `vcov` within `tolerance` relative — a covariance relative to √(var1·var2), the scale of its
    /// two variances — or within `floor`.
    static func varCorr(_ ours: [VarCorrEntry], _ theirs: [VarCorrEntry], tolerance: Double, floor: Double = 0,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ours.count == theirs.count, "varcorr has \(ours.count) entries, lme4 \(theirs.count)", sourceLocation: sourceLocation)
        func variance(_ entries: [VarCorrEntry], _ grp: String, _ name: String) -> Double? {
            entries.first { $0.grp == grp && $0.var1 == name && $0.var2 == nil }?.vcov
        }
        for entry in theirs {
            let label = "\(entry.grp) \(entry.var1 ?? "") \(entry.var2 ?? "")"
            guard let mine = ours.first(where: { $0.grp == entry.grp && $0.var1 == entry.var1 && $0.var2 == entry.var2 }) else {
                Issue.record("missing varcorr entry \(label)", sourceLocation: sourceLocation)
                continue
            }
            var scale = abs(entry.vcov)
            if let var1 = entry.var1, let var2 = entry.var2 {
                guard let v1 = variance(theirs, entry.grp, var1), let v2 = variance(theirs, entry.grp, var2) else {
                    Issue.record("lme4's varcorr lacks the variances of \(label)", sourceLocation: sourceLocation)
                    continue
                }
                scale = (v1 * v2).squareRoot()
            }
            #expect(abs(mine.vcov - entry.vcov) <= max(tolerance * scale, floor),
                    "vcov \(label): \(mine.vcov) vs lme4 \(entry.vcov)", sourceLocation: sourceLocation)
        }
    }

    /// The value of `name` in lme4's named list `theirs`; a missing name fails the test.
    static func named(_ theirs: NamedValues<Double>, _ name: String, _ what: String,
                      sourceLocation: SourceLocation = #_sourceLocation) -> Double? {
        guard let value = theirs[name] else {
            Issue.record("lme4's \(what) has no '\(name)'; it has \(theirs.names.joined(separator: ", "))",
                         sourceLocation: sourceLocation)
            return nil
        }
        return value
    }

    /// Tolerance of the REML criterion (or deviance) against lme4's default fits. Measured at
    /// a399f4a over the 41 fits of the likelihood, optimizer and boundary tests: the largest
    /// |ours − lme4| was 1.05e-6 (machines_slopes_reml, ours lower), the largest above lme4's
    /// 6.5e-7 (synthetic_crossed_reml); 1e-5 leaves a tenfold margin.
    static let objectiveTolerance = 1e-5

    /// The REML criterion (or deviance), logLik, AIC and BIC of `fit` within
    /// ``objectiveTolerance`` of lme4's, on either side: an optimum lower than lme4's by more
    /// than that is as much a discrepancy as a higher one.
    static func likelihood(_ fit: FitResult, _ reference: Fixtures.Reference,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        let tolerance = objectiveTolerance
        #expect(abs(fit.objective - reference.objective) <= tolerance,
                "objective \(fit.objective) vs lme4 \(reference.objective)", sourceLocation: sourceLocation)
        #expect(abs(fit.logLikelihood - reference.logLik) <= tolerance / 2,
                "logLik \(fit.logLikelihood) vs lme4 \(reference.logLik)", sourceLocation: sourceLocation)
        #expect(abs(fit.AIC - reference.AIC) <= tolerance, "AIC \(fit.AIC) vs lme4 \(reference.AIC)", sourceLocation: sourceLocation)
        #expect(abs(fit.BIC - reference.BIC) <= tolerance, "BIC \(fit.BIC) vs lme4 \(reference.BIC)", sourceLocation: sourceLocation)
    }
}

extension FitReport {
    /// The criterion of the fit (lme4's key `method`).
    var criterion: Criterion { method }
}
