import ArgumentParser
import Foundation
import MixedModels

/// `lmm fit DATA.csv --formula F [...]`.
struct FitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit a linear mixed model and print lme4's summary.",
        discussion: """
        Examples:
          lmm fit sleepstudy.csv --formula 'Reaction ~ 1 + Days + (1 + Days | Subject)'
          lmm fit sleepstudy.csv --formula 'Reaction ~ Days + (Days | Subject)' --ml --json fit.json
          lmm fit sleepstudy.csv --formula 'Reaction ~ Days + (Days | Subject)' --variances fit.json --ranef blups.csv
        """
    )

    @Argument(help: "CSV file with a header row.")
    var data: String

    @Option(name: .shortAndLong, help: "Model formula in lme4 syntax, e.g. 'y ~ 1 + x + (1 + x | g)'.")
    var formula: String

    @Option(help: ArgumentHelp("Fix the variance components: a JSON file with a 'varcorr' list (lme4's key names; any fit's --json output).", valueName: "V.json"))
    var variances: String?

    @Flag(help: "Maximum likelihood instead of REML.")
    var ml = false

    @Option(help: ArgumentHelp("Write the fit as JSON (the reference JSON key names).", valueName: "OUT.json"))
    var json: String?

    @Option(help: ArgumentHelp("Write the random effects and conditional SDs as CSV.", valueName: "OUT.csv"))
    var ranef: String?

    @Flag(name: .shortAndLong, help: "Do not print the summary.")
    var quiet = false

    func run() throws {
        do {
            try fit()
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("lmm: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    private func fit() throws {
        PhaseLog.mark("start")
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        PhaseLog.mark("read CSV")
        let model = try LinearMixedModel(formula: parsed, data: table)
        let criterion: Criterion = ml ? .ml : .reml
        let result: FitResult
        if let variances {
            result = try model.fit(given: try VarianceComponents.load(path: variances), criterion: criterion)
        } else {
            result = try model.fit(criterion: criterion)
        }
        PhaseLog.mark("fit")
        var outputs = OutputFiles()
        do {
            if let json {
                let document = result.json
                PhaseLog.mark("JSON document")
                let text = try document.serialized()
                PhaseLog.mark("JSON text")
                try outputs.stage(text, at: json)
                PhaseLog.mark("JSON file")
            }
            if let ranef { try outputs.stage(try result.ranefCSV(), at: ranef) }
            try outputs.commit()
        } catch {
            outputs.discard()
            throw error
        }
        PhaseLog.mark("write outputs")
        if !quiet { print(result.summary(dataName: table.source), terminator: "") }
        if quiet {
            // The summary carries the messages; without it they go to standard error.
            for message in result.messages { FileHandle.standardError.write(Data("lmm: \(message)\n".utf8)) }
        }
    }
}
