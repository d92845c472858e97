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
        Examples:
          lmm fit sleepstudy.csv -f 'Reaction ~ 1 + Days + (1 + Days | Subject)' --save sleep.lmm
          lmm predict sleep.lmm new.csv --out pred.csv
          lmm predict sleep.lmm new.csv --out pred.csv --re-form none
        """
    )

    @Argument(help: "Model file written by lmm fit --save.")
    var model: String

    @Argument(help: "CSV file with the model's columns (the response is not needed).")
    var newData: String

    @Option(help: ArgumentHelp("Where to write the predictions (CSV).", valueName: "PRED.csv"))
    var out: String

    @Option(help: "'full' (Xβ + Zb, default) or 'none' (population level, Xβ: lme4's re.form = NA).")
    var reForm: ReForm = .full

    @Option(help: "A grouping level the fit did not see: 'population' (its terms contribute 0, lme4's allow.new.levels = TRUE; default) or 'error'.")
    var newLevels: PredictionOptions.NewLevels = .population

    @Flag(name: .shortAndLong, help: "Do not report the counts on standard error.")
    var quiet = false

    enum ReForm: String, ExpressibleByArgument, CaseIterable {
        case full
        case none
    }

    func run() throws {
        try reportingErrors {
            try OutputFiles.checkDistinct(inputs: [(model, "the model file"), (newData, "the new data")],
                                          outputs: [(out, "--out")])
            let saved = try SavedModel.load(path: model)
            let summary = try Predictor.predict(saved, newData: newData, output: out,
                                                options: PredictionOptions(populationLevel: reForm == .none, newLevels: newLevels))
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
