import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench kernels`: the inner kernels one by one.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Micro-benchmarks: CSV parsing, refactorization + solve, Z build."
    )

    @Option(help: "The sleepstudy CSV (bundled example).")
    var sleepstudy = "examples/sleepstudy.csv"

    @Option(help: "Rows of the synthetic CSV for the parsing benchmark.")
    var csvRows = 2_000_000

    @Option(help: "Seconds to spend on each timing.")
    var seconds = 2.0

    func run() throws {
        try refactorizationSleepstudy()
        try csvThroughput()
    }

    /// One objective evaluation on sleepstudy `(1 + Days | Subject)`: numeric refactorization
    /// of Λ'Z'ZΛ + I, the solves for RZX and cu, and the Schur complement.
    private func refactorizationSleepstudy() throws {
        let formula = try Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
        let data = try CSVReader.read(path: sleepstudy, for: formula)
        let model = try LinearMixedModel(formula: formula, data: data)
        let thetas = [[0.9667, 0.0152, 0.2309], [1.0, 0.0, 1.0]]
        var index = 0
        let timing = try Harness.measure(batch: 1000, seconds: seconds) {
            _ = try model.objective(at: thetas[index & 1], criterion: .reml)
            index += 1
        }
        print("refactor+solve sleepstudy (1 + Days | Subject): median \(Harness.format(seconds: timing.median)), min \(Harness.format(seconds: timing.minimum)) per evaluation")
    }

    /// CSV parsing throughput on a mixed numeric/categorical file (y, x, user, item).
    private func csvThroughput() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lmm-bench-\(getpid()).csv").path
        defer { unlink(path) }
        var text = "y,x,user,item\n"
        text.reserveCapacity(csvRows * 40)
        var generator = SplitMix(seed: 42)
        for _ in 0..<csvRows {
            let y = generator.nextDouble() * 10 - 5, x = generator.nextDouble() * 4 - 2
            let user = generator.next() % 100_000, item = generator.next() % 10_000
            text += "\(y),\(x),u\(user),i\(item)\n"
        }
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        let bytes = Double(text.utf8.count)
        let formula = try Formula.parse("y ~ 1 + x + (1 | user) + (1 | item)")
        let timing = try Harness.measure(seconds: seconds, minimumSamples: 3) {
            _ = try CSVReader.read(path: path, for: formula)
        }
        let megabytes = bytes / 1e6
        print(String(format: "CSV parse (%d rows, %.0f MB, 2 numeric + 2 categorical columns): %.0f MB/s (median), %.0f MB/s (best), %.1f M rows/s",
                     csvRows, megabytes, megabytes / timing.median, megabytes / timing.minimum, Double(csvRows) / timing.median / 1e6))
    }
}

/// A small deterministic generator for benchmark data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
