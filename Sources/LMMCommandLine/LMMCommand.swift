import ArgumentParser

/// `lmm`: fit linear mixed models as lme4 does, from CSV files.
package struct LMMCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "lmm",
        abstract: "Fit linear mixed models (lme4 formulas) to CSV data.",
        subcommands: [
            FitCommand.self,
            ConvertCommand.self,
            PredictCommand.self,
            AnovaCommand.self,
            ConfintCommand.self,
            SimulateCommand.self,
            PlotCommand.self,
        ],
        defaultSubcommand: FitCommand.self
    )

    package init() {}
}
