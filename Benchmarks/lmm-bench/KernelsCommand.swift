import ArgumentParser
import Foundation
import MixedModels

/// `lmm-bench kernels`: the inner kernels one by one.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Micro-benchmarks: dense kernels (which BLAS, dpotrf and dgemm GFlop/s), CSV parsing, float parser vs strtod, level order vs ICU, refactorization + solve, Z build, Adam epoch, datagen output."
    )

    @Option(help: "The sleepstudy CSV (bundled example).")
    var sleepstudy = "examples/sleepstudy.csv"

    @Option(help: "Rows of the synthetic CSV for the parsing benchmark.")
    var csvRows = 2_000_000

    @Option(help: "Seconds to spend on each timing.")
    var seconds = 2.0

    @Option(help: "Rows of the synthetic users × items data for the design and refactorization kernels.")
    var designRows = 1_000_000

    @Option(help: "Rows datagen writes for its throughput benchmark.")
    var datagenRows = 10_000_000

    @Option(help: "Decimal numbers per buffer for the float parser against strtod.")
    var numberCount = 1_000_000

    @Option(help: "Labels for LevelOrder against ICU collation.")
    var levelCount = 100_000

    @Option(help: "Orders of the dense Cholesky factorizations timed (dpotrf), comma-separated.")
    var denseSizes = "4000,10000"

    @Option(help: "Columns per panel of the packed dense storage timed next to the square one, comma-separated.")
    var panelWidths = "512"

    @Option(help: "Run only these kernels (comma-separated): dense, refactorization, csv, numbers, levels, design, adam, datagen.")
    var only: String?

    func run() throws {
        let chosen = only.map { Set($0.split(separator: ",").map(String.init)) }
        let kernels: [(String, () throws -> Void)] = [
            ("dense", { try DenseKernels(sizes: try positiveIntegers(denseSizes, option: "--dense-sizes"),
                                    panelWidths: try positiveIntegers(panelWidths, option: "--panel-widths")).run() }),
            ("refactorization", refactorizationSleepstudy), ("csv", csvThroughput), ("numbers", numberParsing),
            ("levels", levelOrdering), ("design", designAndRefactorization), ("adam", adamEpoch),
            ("datagen", datagenThroughput),
        ]
        if let chosen, let unknown = chosen.first(where: { name in !kernels.contains { $0.0 == name } }) {
            throw ValidationErrorText("unknown kernel \"\(unknown)\"; the kernels are: " + kernels.map(\.0).joined(separator: ", "))
        }
        for (name, kernel) in kernels where chosen?.contains(name) ?? true { try kernel() }
    }

    /// A comma-separated list of positive integers, or an error naming the option and the item.
    private func positiveIntegers(_ list: String, option: String) throws -> [Int] {
        try list.split(separator: ",", omittingEmptySubsequences: false).map { item in
            guard let value = Int(item.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw ValidationErrorText("\(option): expected positive integers separated by commas, found \"\(item)\"")
            }
            return value
        }
    }

    /// datagen's writing speed, whole process (`datagen` next to this program): the
    /// users-items preset as CSV and as `.lmmbin`, `datagenRows` rows each, best of three.
    private func datagenThroughput() throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let datagen = bin.appendingPathComponent("datagen").path
        guard FileManager.default.isExecutableFile(atPath: datagen) else {
            print("datagen: not built next to lmm-bench (swift build -c release); skipped")
            return
        }
        for format in ["csv", "lmmbin"] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("lmm-bench-\(getpid()).\(format)").path
            defer { unlink(path) }
            var best = Double.infinity
            for _ in 0..<3 {
                let run = try Subprocess.run(datagen, ["--preset", "users-items", "--rows", "\(datagenRows)", "--seed", "1",
                                                       "--out", path, "--no-ranef", "--quiet"], cap: 600)
                guard run.status == 0 else { throw ValidationErrorText("datagen failed: \(run.stderr)") }
                best = min(best, run.seconds)
            }
            print(String(format: "datagen --preset users-items, %d rows to %@: %.2f s, %.1fM rows/s (best of 3, whole process)",
                         datagenRows, format, best, Double(datagenRows) / best / 1e6))
        }
    }

    /// Rows per second of a streaming Adam epoch (given penalties, so every epoch is the same
    /// work): users × items intercepts, `designRows` rows in an `.lmmbin` file (page cache warm).
    private func adamEpoch() throws {
        let n = designRows, users = max(n / 10, 2), items = max(n / 100, 2)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lmm-bench-\(getpid()).lmmbin").path
        defer { unlink(path) }
        var generator = SplitMix64(seed: 11)
        var y = [Double](repeating: 0, count: n), x = y
        var u = [Int32](repeating: 0, count: n), i = u
        for r in 0..<n {
            x[r] = generator.nextDouble() * 2 - 1
            u[r] = Int32(Double(users) * pow(generator.nextDouble(), 2.5))
            i[r] = Int32(Double(items) * pow(generator.nextDouble(), 2.5))
            y[r] = 1 + 0.5 * x[r] + Double(u[r] % 7) * 0.1 - Double(i[r] % 5) * 0.1 + generator.nextDouble()
        }
        let writer = try LMMBinaryWriter(path: path, columns: [.float64("y"), .float64("x"), .factor("user"), .factor("item")])
        try writer.setLevels((0..<users).map { "u" + String(format: "%07d", $0) }, forColumn: "user")
        try writer.setLevels((0..<items).map { "i" + String(format: "%07d", $0) }, forColumn: "item")
        try writer.append([.float64(y), .float64(x), .factor(u), .factor(i)])
        try writer.finish()
        let model = try StreamingMixedModel(formula: try Formula.parse("y ~ 1 + x + (1 | user) + (1 | item)"),
                                            reader: try LMMBinaryReader.openForStreaming(path: path))
        var options = AdamOptions()
        options.penalties = .given(VarianceComponents(entries: [
            VarCorrEntry(grp: "user", var1: "(Intercept)", var2: nil, vcov: 0.04, sdcor: 0.2),
            VarCorrEntry(grp: "item", var1: "(Intercept)", var2: nil, vcov: 0.01, sdcor: 0.1),
            VarCorrEntry(grp: "Residual", var1: nil, var2: nil, vcov: 0.08, sdcor: 0.28),
        ]))
        options.maxEpochs = 8
        options.tolerance = 1e-300
        let collector = AdamCommand.EpochCollector()
        options.progress = { collector.add($0) }
        _ = try model.fit(adam: options)
        let rates = collector.rates.sorted()
        guard !rates.isEmpty else { return }
        print(String(format: "Adam epoch, %d rows (1 | user) %d + (1 | item) %d, .lmmbin: median %.1fM rows/s, best %.1fM rows/s (%d epochs)",
                     n, users, items, rates[rates.count / 2] / 1e6, rates.last! / 1e6, rates.count))
    }

    /// Z and its cross-products (`LinearMixedModel` set-up: model frame, Z, Z'Z, Z'[X y],
    /// symbolic analysis) and one refactorization + solve, on users × items data of
    /// `designRows` rows (users = rows/10, items = rows/100, a random slope for users).
    private func designAndRefactorization() throws {
        let n = designRows, users = max(n / 10, 2), items = max(n / 100, 2)
        var generator = SplitMix64(seed: 7)
        var y = [Double](repeating: 0, count: n), x = y
        var u = [Int32](repeating: 0, count: n), i = u
        for r in 0..<n {
            x[r] = generator.nextDouble() * 2 - 1
            y[r] = x[r] + generator.nextDouble()
            u[r] = Int32(Double(users) * pow(generator.nextDouble(), 2.5))
            i[r] = Int32(Double(items) * pow(generator.nextDouble(), 2.5))
        }
        func labels(_ count: Int, _ prefix: String) -> [String] { (0..<count).map { prefix + String(format: "%07d", $0) } }
        let data = DataTable(source: "synthetic", columnNames: ["y", "x", "user", "item"], columns: [
            "y": .numeric(y), "x": .numeric(x),
            "user": .categorical(Factor(codes: u, levels: labels(users, "u"))),
            "item": .categorical(Factor(codes: i, levels: labels(items, "i"))),
        ], rowCount: n)
        let formula = try Formula.parse("y ~ 1 + x + (1 + x | user) + (1 | item)")
        var model: LinearMixedModel?
        let setup = try Harness.measure(seconds: 0, minimumSamples: 3) { model = try LinearMixedModel(formula: formula, data: data) }
        print("model set-up, \(n) rows (model frame, Z, Z'Z, Z'[X y], analysis): median \(Harness.format(seconds: setup.median))")
        print("  factor: \(model!.factorDescription)")
        let theta = model!.parameters.initialTheta
        let evaluation = try Harness.measure(seconds: seconds, minimumSamples: 3) { _ = try model!.objective(at: theta) }
        print("refactorization + solve, \(n) rows: median \(Harness.format(seconds: evaluation.median)), min \(Harness.format(seconds: evaluation.minimum))")
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
        // The whole REML fit in process (optimizer, estimates, conditional SDs), the model set up once.
        var iterations = 0
        let fitTiming = try Harness.measure(batch: 20, seconds: seconds) { iterations = try model.fit(criterion: .reml).iterations }
        print("sleepstudy REML fit in process (\(iterations) evaluations): median \(Harness.format(seconds: fitTiming.median)), min \(Harness.format(seconds: fitTiming.minimum))")
    }

    /// CSV parsing throughput on a mixed numeric/categorical file (y, x, user, item).
    private func csvThroughput() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lmm-bench-\(getpid()).csv").path
        defer { unlink(path) }
        var text = "y,x,user,item\n"
        text.reserveCapacity(csvRows * 40)
        var generator = SplitMix64(seed: 42)
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
