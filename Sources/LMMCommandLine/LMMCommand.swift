import ArgumentParser

/// `lmm`: fit linear mixed models as lme4 does, from CSV files.
public struct LMMCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lmm",
        abstract: "Fit linear mixed models (lme4 formulas) to CSV data.",
        subcommands: [
            FitCommand.self,
            ConvertCommand.self,
            PredictCommand.self,
            AnovaCommand.self,
        ],
        defaultSubcommand: FitCommand.self
    )

    public init() {}
}
