import ArgumentParser
import Foundation
import MixedModels

/// `lmm anova DATA.csv -f F0 -f F1 [...]`: lme4's `anova(m0, m1, …)`.
struct AnovaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anova",
        abstract: "Likelihood-ratio tests of nested models, refitted by ML (lme4's anova).",
        discussion: """
        Example:
          lmm anova sleepstudy.csv -f 'Reaction ~ Days + (1 | Subject)' -f 'Reaction ~ Days + (Days | Subject)'
        """
    )

    @Argument(help: "CSV file with a header row.")
    var data: String

    // Unconditional: a formula may start with '-' ("-1 + x ~ …" is no option).
    @Option(name: .shortAndLong, parsing: .unconditionalSingleValue, help: "A model formula; give two or more, nested.")
    var formula: [String]

    @Option(help: ArgumentHelp("Write the table as JSON.", valueName: "OUT.json"))
    var json: String?

    @Flag(name: .shortAndLong, help: "Do not print the table.")
    var quiet = false

    func validate() throws {
        if formula.count < 2 { throw ValidationError("give at least two formulas (-f F0 -f F1)") }
    }

    func run() throws {
        try reportingErrors {
            FileHandle.standardError.write(Data("refitting model(s) with ML (instead of REML)\n".utf8))
            let comparison = try ModelComparison.fit(dataPath: data, formulas: formula)
            if let json {
                var outputs = OutputFiles()
                do {
                    try outputs.stage(try comparison.json.serialized(), at: json)
                    try outputs.commit()
                } catch {
                    outputs.discard()
                    throw error
                }
            }
            if !quiet { print(comparison.table, terminator: "") }
        }
    }
}
