import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench mackay DATA --formula F`: iterations and time to converge of each MacKay form,
/// with the cost of an iteration split into refactorization, posterior covariances and the
/// per-term updates; and the speedup of running the per-term work concurrently.
struct MacKayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mackay",
        abstract: "Iterations, time and per-iteration cost of the MacKay forms (and their concurrency speedup)."
    )

    @Argument var data: String
    @Option(name: .shortAndLong) var formula: String
    @Option(help: "Forms to run (mackay-quick, mackay, em).") var form: [String] = ["mackay-quick", "mackay", "em"]
    @Option var tolerance = 1e-6
    @Option var maxIterations = 200
    @Flag(help: "Also run each form with the per-term work on one thread, and report the speedup.") var speedup = false

    func run() throws {
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: data, for: parsed)
        print("| form | iterations | converged | total | per iteration | refactorization | covariances | per-term updates |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for name in form {
            guard let chosen = MacKayForm(rawValue: name) else { throw ValidationError("unknown form \(name)") }
            for concurrent in speedup ? [true, false] : [true] {
                let model = try LinearMixedModel(formula: parsed, data: table)
                var options = MacKayOptions(form: chosen)
                options.tolerance = tolerance
                options.maxIterations = maxIterations
                options.concurrent = concurrent
                let collector = Collector()
                options.progress = { collector.add($0) }
                let t0 = Harness.now()
                let fit = try model.fit(mackay: options)
                let total = Harness.now() - t0
                let parts = collector.sums()
                let count = Double(max(fit.iterations, 1))
                print("| \(name)\(speedup ? (concurrent ? " (concurrent)" : " (one thread)") : "") | \(fit.iterations) | \(fit.converged) | \(Harness.format(seconds: total)) | \(Harness.format(seconds: parts.total / count)) | \(Harness.format(seconds: parts.factorization / count)) | \(Harness.format(seconds: parts.covariance / count)) | \(Harness.format(seconds: parts.update / count)) |")
            }
        }
    }

    /// Sums the per-iteration timings reported by the loop.
    final class Collector: @unchecked Sendable {
        private let lock = NSLock()
        private var points: [MacKayProgress] = []
        func add(_ point: MacKayProgress) { lock.lock(); points.append(point); lock.unlock() }
        func sums() -> (total: Double, factorization: Double, covariance: Double, update: Double) {
            lock.lock(); defer { lock.unlock() }
            return (points.reduce(0) { $0 + $1.seconds }, points.reduce(0) { $0 + $1.factorizationSeconds },
                    points.reduce(0) { $0 + $1.covarianceSeconds }, points.reduce(0) { $0 + $1.updateSeconds })
        }
    }
}
