import ArgumentParser
import Foundation
import MixedModels

/// `lmm predict MODEL NEWDATA.csv --out PRED.csv`: lme4's `predict(m, newdata)`.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict new data from a model saved by 'lmm fit … --save'.",
        discussion: """
        Writes 'row,prediction': the new-data row (1-based) and Xβ + Zb (conditional, lme4's default), or Xβ \
        with --re-form none. A row with a missing value in a column the prediction needs is written as NA.

        --interval confidence|prediction adds 'se,lower,upper' (prediction ± z·se, z = qnorm(1 − (1 − level)/2)), \
        conditional on θ and σ. With v = (z, x) the row of Z (the levels the fit saw) and of X, and \
        C = Cov(b̂ − b, β̂ − β) the joint conditional covariance (σ²·inverse of the mixed-model equations), \
        se² = v'Cv + Σ over terms whose level is unseen of z_j'Σ_j z_j (Σ_j = σ²T_jT_j', the term's covariance); \
        with --re-form none every level counts as unseen: se² = x'vcov(β)x + Σ_j z_j'Σ_j z_j. \
        'prediction' adds σ² (a new observation). The model file stores C for q + p ≤ 1000 only, and not for \
        models of --method adam or iterative (their files have vcov(β): population-level intervals only).
        Examples:
          lmm fit sleepstudy.csv -f 'Reaction ~ 1 + Days + (1 + Days | Subject)' --save sleep.lmm
          lmm predict sleep.lmm new.csv --out pred.csv
          lmm predict sleep.lmm new.csv --out pred.csv --re-form none
          lmm predict sleep.lmm new.csv --out pred.csv --interval prediction --level 0.9
        """
    )

    @Argument(help: "Model file written by lmm fit --save.")
    var model: String

    @Argument(help: "CSV file with the model's columns, including those inside its function calls and the offset column (the response is not needed).")
    var newData: String

    @Option(help: ArgumentHelp("Where to write the predictions (CSV).", valueName: "PRED.csv"))
    var out: String

    @Option(help: "'full' (Xβ + Zb, default) or 'none' (population level, Xβ: lme4's re.form = NA).")
    var reForm: ReForm = .full

    @Option(help: "A grouping level the fit did not see: 'population' (its terms contribute 0, lme4's allow.new.levels = TRUE; default) or 'error'.")
    var newLevels: PredictionOptions.NewLevels = .population

    @Option(help: "Add an interval: 'confidence' (for the mean x'β + z'b) or 'prediction' (for a new observation); conditional on θ and σ (see above).")
    var interval: PredictionOptions.Interval = .none

    @Option(help: "Coverage of the interval (default 0.95).")
    var level: Double = 0.95

    @Flag(name: .shortAndLong, help: "Do not report the counts on standard error.")
    var quiet = false

    enum ReForm: String, ExpressibleByArgument, CaseIterable {
        case full
        case none
    }

    func validate() throws {
        if !(level > 0 && level < 1) { throw ValidationError("--level must be strictly between 0 and 1") }
    }

    func run() throws {
        try reportingErrors {
            try OutputFiles.checkDistinct(inputs: [(model, "the model file"), (newData, "the new data")],
                                          outputs: [(out, "--out")])
            let saved = try SavedModel.load(path: model)
            let summary = try Predictor.predict(saved, newData: newData, output: out,
                                                options: PredictionOptions(populationLevel: reForm == .none, newLevels: newLevels,
                                                                          interval: interval, level: level))
            if !quiet && interval != .none && saved.isApproximate {
                let vcov = saved.approximations.first { $0.quantity == "fixef.vcov" }.map { "; vcov(β): \($0.how)" } ?? ""
                FileHandle.standardError.write(Data("lmm: note: the model was fitted by --method \(saved.algorithm): the interval is conditional on its approximate θ and σ\(vcov)\n".utf8))
            }
            if !quiet {
                var message = "lmm: \(summary.rows) row\(summary.rows == 1 ? "" : "s") predicted"
                if summary.missingRows > 0 {
                    message += "; \(summary.missingRows) with missing values written as NA"
                }
                if summary.newLevelRows > 0 {
                    message += "; \(summary.newLevelRows) with a grouping level the fit did not see (those terms at the population level)"
                }
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
        }
    }
}

extension PredictionOptions.NewLevels: ExpressibleByArgument {}
extension PredictionOptions.Interval: ExpressibleByArgument {}
