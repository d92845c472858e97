import Foundation
import Testing
@testable import MixedModels

/// The bundled example data (from lme4) and lme4 1.1-31 reference fits.
enum Fixtures {
    static func path(_ name: String) -> String {
        let url = Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name)
        return url.path
    }

    /// An lme4 reference fit (../shared/reference/*.json).
    struct Reference: Decodable {
        var formula: String
        var method: String
        var nobs: Int
        var theta: [Double]
        var sigma: Double
        var fixef: [String: Double]
        var fixef_se: [String: Double]
        var varcorr: [VarCorrEntry]
        var logLik: Double
        var objective: Double
        var AIC: Double
        var BIC: Double
        var ngroups: [String: Int]
        var ranef: [RanefRow]

        var criterion: Criterion { method == "ML" ? .ml : .reml }

        enum CodingKeys: String, CodingKey {
            case formula, method, nobs, theta, sigma, fixef, fixef_se, varcorr, logLik, objective, AIC, BIC, ngroups, ranef
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            formula = try c.decode(String.self, forKey: .formula)
            method = try c.decode(String.self, forKey: .method)
            nobs = try c.decode(Int.self, forKey: .nobs)
            // R's jsonlite writes a length-one θ as a bare number.
            if let scalar = try? c.decode(Double.self, forKey: .theta) { theta = [scalar] } else { theta = try c.decode([Double].self, forKey: .theta) }
            sigma = try c.decode(Double.self, forKey: .sigma)
            fixef = try c.decode([String: Double].self, forKey: .fixef)
            fixef_se = try c.decode([String: Double].self, forKey: .fixef_se)
            varcorr = try c.decode([VarCorrEntry].self, forKey: .varcorr)
            logLik = try c.decode(Double.self, forKey: .logLik)
            objective = try c.decode(Double.self, forKey: .objective)
            AIC = try c.decode(Double.self, forKey: .AIC)
            BIC = try c.decode(Double.self, forKey: .BIC)
            ngroups = try c.decode([String: Int].self, forKey: .ngroups)
            ranef = try c.decode([RanefRow].self, forKey: .ranef)
        }
    }

    static func reference(_ name: String) throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name + ".json")))
        return try JSONDecoder().decode(Reference.self, from: data)
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
    static func ranef(_ ours: [RanefRow], _ theirs: [RanefRow], tolerance: Double, sdTolerance: Double,
                      sourceLocation: SourceLocation = #_sourceLocation) {
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
}
