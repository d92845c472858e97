import ArgumentParser
import Foundation
import MixedModels

/// `lmm simulate DATA.csv -f F --nsim N --seed S --out SIM.csv`: lme4's `simulate(m, nsim, seed)`.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate responses from the fitted model (lme4's simulate).",
        discussion: """
        Fits the model (REML, or ML with --ml), then draws y* = Xβ̂ + ZΛ̂u* + ε* with u* and ε* \
        independent N(0, σ̂²): the generator of `lmm confint --method boot`. The CSV file has one \
        column per simulation (sim_1, sim_2, …) and one row per observation used by the fit (rows \
        with missing values dropped, as na.omit). Simulation i depends only on --seed and i.

        Example:
          lmm simulate sleepstudy.csv -f 'Reaction ~ 1 + Days + (1 + Days | Subject)' --nsim 10 --seed 1 --out sim.csv
        """
    )

    @OptionGroup var model: FittedModelOptions

    @Option(help: "Number of simulated responses.")
    var nsim: Int = 1

    @Option(help: "Seed.")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("The CSV file to write.", valueName: "SIM.csv"))
    var out: String

    func validate() throws {
        if nsim < 1 { throw ValidationError("--nsim must be at least 1 (got \(nsim))") }
    }

    func run() throws {
        try reportingErrors {
            let (model, fit, _) = try self.model.fit()
            let simulator = ResponseSimulator(model: model, fit: fit)
            let columns = (0..<nsim).map { simulator.simulate(seed: seed, index: $0) }
            var text = (1...nsim).map { "sim_\($0)" }.joined(separator: ",") + "\n"
            for i in 0..<model.frame.n {
                text += columns.map { "\($0[i])" }.joined(separator: ",") + "\n"
            }
            var outputs = OutputFiles()
            do {
                try outputs.stage(text, at: out)
                try outputs.commit()
            } catch {
                outputs.discard()
                throw error
            }
        }
    }
}
