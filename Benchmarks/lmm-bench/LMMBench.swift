import ArgumentParser

/// `lmm-bench`: micro-benchmarks of the inner kernels and the scaling suite.
@main
struct LMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lmm-bench",
        abstract: "Benchmarks of lmm: inner kernels and whole fits.",
        subcommands: [KernelsCommand.self, EvaluateCommand.self, OptimizeCommand.self, MacKayCommand.self, ScalingCommand.self, ShapesCommand.self, AdamCommand.self]
    )
}
