import ArgumentParser
import Foundation
import MixedModels

/// `lmm plot MODEL.lmm [DATA.csv] --out DIR`: the diagnostic plots of a saved model.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw the diagnostic plots (SVG) of a model saved by 'lmm fit … --save'.",
        discussion: """
        From the model file alone: per grouping factor, the caterpillar plot of the conditional modes \
        (±1.96 conditional SD) and the normal QQ plot of each effect's modes. With DATA, the file the \
        model was fitted to (checked against the model's fingerprint of it: size and hash; not for a \
        --method adam model), also the \
        residuals against the fitted values and the normal QQ plot of the residuals, computed from the \
        model's β and b on the data's rows. The files are those 'lmm fit … --plot DIR' writes, byte for byte.
        Examples:
          lmm fit sleepstudy.csv -f 'Reaction ~ 1 + Days + (1 + Days | Subject)' --save sleep.lmm
          lmm plot sleep.lmm --out plots
          lmm plot sleep.lmm sleepstudy.csv --out plots
        """
    )

    @Argument(help: "Model file written by lmm fit --save.")
    var model: String

    @Argument(help: "The CSV file the model was fitted to (for the residual plots).")
    var data: String?

    @Option(help: ArgumentHelp("Directory for the SVG files (created when missing).", valueName: "DIR"))
    var out: String

    func run() throws {
        try reportingErrors {
            let saved = try SavedModel.load(path: model)
            if let condSD = saved.approximations.first(where: { $0.quantity == "condSD" }) {
                FileHandle.standardError.write(Data("lmm: note: the model was fitted by --method \(saved.algorithm); its conditional SDs are approximate: \(condSD.how)\n".utf8))
            }
            let fitted = try data.map { try saved.fittedValues(dataPath: $0) }
            var outputs = OutputFiles()
            do {
                for file in try PlotDirectory.files(saved.diagnosticPlots(fitted: fitted), in: out, option: "--out") {
                    try outputs.stage(file.text, at: file.path)
                }
                try outputs.commit()
            } catch {
                outputs.discard()
                throw error
            }
        }
    }
}
