import ArgumentParser
import Foundation
import MixedModels

/// `lmm confint DATA.csv -f F --method wald|profile|boot`: lme4's `confint(m, method = …)`.
struct ConfintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "confint",
        abstract: "Confidence intervals for the variance parameters, σ and β (lme4's confint).",
        discussion: """
        Rows as lme4's confint(m): .sig01, .sig02, … (the standard deviations and correlations of \
        each term, in θ's order), .sigma, then the fixed effects.
          wald     β̂ ± z·SE; NA for the variance parameters, as lme4.
          profile  lme4's confint(profile(m)): the ML deviance profiled over the other \
        parameters (a REML fit is refitted by ML first, as lme4 does), its signed square root ζ \
        interpolated by a spline.
          boot     parametric bootstrap (lme4's bootMer): --nsim responses simulated from the \
        fit, each refitted (REML or ML as the fit), percentile intervals; deterministic for \
        --seed whatever the number of threads (LMM_THREADS caps them).

        Examples:
          lmm confint sleepstudy.csv -f 'Reaction ~ 1 + Days + (1 + Days | Subject)' --method profile
          lmm confint sleepstudy.csv -f 'Reaction ~ 1 + Days + (1 + Days | Subject)' --method boot --nsim 500 --seed 1 --replicates boot.csv
        """
    )

    @OptionGroup var model: FittedModelOptions

    @Option(help: "wald, profile (default) or boot.")
    var method: ConfidenceIntervals.Method = .profile

    @Option(help: "Confidence level.")
    var level: Double = 0.95

    @Option(help: "boot: number of simulated responses.")
    var nsim: Int?

    @Option(help: "boot: seed (the same seed gives the same replicates with any number of threads).")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("boot: write every replicate's estimates as CSV.", valueName: "OUT.csv"))
    var replicates: String?

    @Option(help: ArgumentHelp("profile: write the profile points (parameter, value, ζ) as CSV.", valueName: "OUT.csv"))
    var profileCsv: String?

    @Option(help: ArgumentHelp("Write the intervals as JSON.", valueName: "OUT.json"))
    var json: String?

    @Flag(name: .shortAndLong, help: "Do not print the table.")
    var quiet = false

    func validate() throws {
        if !(level > 0 && level < 1) { throw ValidationError("--level must be strictly between 0 and 1") }
        if method == .boot {
            guard let nsim else { throw ValidationError("--method boot needs --nsim N (for example 500)") }
            if nsim < 1 { throw ValidationError("--nsim must be at least 1 (got \(nsim))") }
        } else {
            if nsim != nil { throw ValidationError("--nsim applies to --method boot only") }
            if replicates != nil { throw ValidationError("--replicates applies to --method boot only") }
        }
        if profileCsv != nil && method != .profile { throw ValidationError("--profile-csv applies to --method profile only") }
    }

    func run() throws {
        try reportingErrors {
            let (model, fit, _) = try self.model.fit()
            var outputs = OutputFiles()
            let intervals: ConfidenceIntervals
            switch method {
            case .wald:
                intervals = model.waldIntervals(fit, level: level)
            case .profile:
                FileHandle.standardError.write(Data("lmm: computing profile confidence intervals (ML deviance\(fit.criterion == .reml ? "; the REML fit refitted by ML, as lme4" : ""))\n".utf8))
                let profile = try model.profile(from: fit)
                intervals = profile.intervals(level: level)
                if let profileCsv { try outputs.stage(profile.csv, at: profileCsv) }
            case .boot:
                let progress = BootstrapProgress(total: nsim!)
                let bootstrap = try ParametricBootstrap(model: model, fit: fit)
                    .run(replicates: nsim!, seed: seed, progress: { progress.advance() })
                progress.finish()
                intervals = bootstrap.percentileIntervals(level: level)
                if let replicates { try outputs.stage(bootstrap.csv, at: replicates) }
            }
            do {
                if let json { try outputs.stage(try intervals.json.serialized(), at: json) }
                try outputs.commit()
            } catch {
                outputs.discard()
                throw error
            }
            for message in intervals.messages { FileHandle.standardError.write(Data("lmm: \(message)\n".utf8)) }
            if !quiet { print(intervals.table, terminator: "") }
        }
    }
}

extension ConfidenceIntervals.Method: ExpressibleByArgument {}
