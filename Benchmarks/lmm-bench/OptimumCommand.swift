import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench optimum`: issue 13's closing table. Every tight lme4 fit in a fixture directory
/// (`NAME_reml_tight.json`, `NAME_ml_tight.json` next to `CASE.csv`, where CASE is NAME up to
/// its first `_`) is refitted in process by the exact engine, EM and the evidence form, and
/// each fit's error against the tight optimum is printed as a Markdown row: Δobjective, the
/// largest relative error of a variance component, of a fixed effect and of an SE, with the
/// iterations and the fit's wall time (the data read once, outside the timing).
struct OptimumCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimum",
        abstract: "Error of exact, em and mackay fits against tight lme4 optima (issue 13's table)."
    )

    @Option(help: "Directory of the tight fits and their data.")
    var fixtures = "Tests/MixedModelsTests/Fixtures/tight"
    @Option(help: "Methods: exact, em, mackay (repeatable).")
    var method: [String] = ["exact", "em", "mackay"]
    @Option(help: "Most iterations of em and mackay.")
    var maxIterations = 2_000

    func run() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: fixtures)
            .filter { $0.hasSuffix("_tight.json") }.sorted()
        print("| case | criterion | method | Δobjective | VC rel | fixef rel | SE rel | iterations | converged | seconds |")
        print("|---|---|---|---:|---:|---:|---:|---:|---|---:|")
        var models: [String: LinearMixedModel] = [:]
        for name in names {
            let reference = try TightReference(path: fixtures + "/" + name)
            let stem = String(name.dropLast("_tight.json".count))
            let caseName = String(stem.prefix { $0 != "_" })
            let label = String(stem.dropLast(reference.criterion == .ml ? 3 : 5))
            let key = caseName + "|" + reference.formula
            let model: LinearMixedModel
            if let cached = models[key] {
                model = cached
            } else {
                let formula = try Formula.parse(reference.formula)
                let data = try CSVReader.read(path: fixtures + "/" + caseName + ".csv", for: formula)
                model = try LinearMixedModel(formula: formula, data: data)
                models[key] = model
            }
            for chosen in method {
                let begin = Harness.now()
                let fit: FitResult
                do {
                    switch chosen {
                    case "exact":
                        fit = try model.fit(criterion: reference.criterion)
                    case "em", "mackay":
                        var options = MacKayOptions(form: chosen == "em" ? .em : .evidence)
                        options.criterion = reference.criterion
                        options.maxIterations = maxIterations
                        fit = try model.fit(mackay: options)
                    default:
                        throw ValidationError("unknown method \(chosen) (exact, em, mackay)")
                    }
                } catch let error as LMMError {
                    let reason = error.description.contains("correlated effects") ? "refused (correlated term)" : "error: \(error)"
                    print("| \(label) | \(reference.criterion.rawValue) | \(chosen) | \(reason) | | | | | | |")
                    continue
                }
                let seconds = Harness.now() - begin
                print(String(format: "| %@ | %@ | %@ | %+.2e | %.1e | %.1e | %.1e | %d | %@ | %.2g |",
                             label, reference.criterion.rawValue, chosen, fit.objective - reference.objective,
                             reference.varianceError(fit), reference.fixedEffectError(fit), reference.standardErrorError(fit),
                             fit.iterations, fit.converged ? "yes" : "no", seconds))
            }
        }
    }
}

/// A tight lme4 fit (the keys of lme4 reference files) and the errors of a fit against it.
struct TightReference {
    var formula: String
    var criterion: Criterion
    var objective: Double
    var varcorr: [(grp: String, var1: String?, var2: String?, vcov: Double)]
    var fixef: [String: Double]
    var fixefSE: [String: Double]

    init(path: String) throws {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        guard let document = object as? [String: Any], let formula = document["formula"] as? String,
              let method = document["method"] as? String, let objective = document["objective"] as? Double,
              let varcorr = document["varcorr"] as? [[String: Any]], let fixef = document["fixef"] as? [String: Double],
              let fixefSE = document["fixef_se"] as? [String: Double] else {
            throw ValidationError("\(path): not a tight lme4 reference (formula, method, objective, varcorr, fixef, fixef_se)")
        }
        self.formula = formula
        criterion = method == "ML" ? .ml : .reml
        self.objective = objective
        self.varcorr = varcorr.map { ($0["grp"] as? String ?? "", $0["var1"] as? String, $0["var2"] as? String,
                                     $0["vcov"] as? Double ?? .nan) }
        self.fixef = fixef
        self.fixefSE = fixefSE
    }

    /// Largest |mine − theirs| / max(|theirs|, 1e-8) over the variance components (NaN for one missing).
    func varianceError(_ fit: FitResult) -> Double {
        varcorr.map { entry in
            guard let mine = fit.varianceComponents.first(where: { $0.grp == entry.grp && $0.var1 == entry.var1
                && $0.var2 == entry.var2 }) else { return .nan }
            return abs(mine.vcov - entry.vcov) / max(abs(entry.vcov), 1e-8)
        }.reduce(0) { $0.isNaN || $1.isNaN ? .nan : max($0, $1) }
    }

    func fixedEffectError(_ fit: FitResult) -> Double { Self.largest(fit.fixedEffectNames, fit.fixedEffects, fixef) }
    func standardErrorError(_ fit: FitResult) -> Double {
        Self.largest(fit.fixedEffectNames, fit.fixedEffectStandardErrors, fixefSE)
    }

    static func largest(_ names: [String], _ values: [Double], _ reference: [String: Double]) -> Double {
        zip(names, values).map { name, value in
            guard let theirs = reference[name] else { return .nan }
            return abs(value - theirs) / max(abs(theirs), 1e-8)
        }.reduce(0) { $0.isNaN || $1.isNaN ? .nan : max($0, $1) }
    }
}
