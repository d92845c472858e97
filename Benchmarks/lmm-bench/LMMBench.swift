import ArgumentParser
#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// `lmm-bench`: micro-benchmarks of the inner kernels and the scaling suite.
@main
struct LMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lmm-bench",
        abstract: "Benchmarks of lmm: inner kernels and whole fits.",
        subcommands: [KernelsCommand.self, EvaluateCommand.self, OptimizeCommand.self, OptimumCommand.self, MacKayCommand.self, ScalingCommand.self, TruthCommand.self, ShapesCommand.self, AdamCommand.self, PCGCommand.self, MPICommand.self]
    )

    /// Line-buffered standard output, so that results appear as they are measured even when
    /// redirected to a file (benchmarks run for minutes).
    static func main() {
        setvbuf(stdout, nil, _IOLBF, 0)
        Self.main(nil)
    }
}
