import Foundation
import Testing
@testable import LMMCommandLine
@testable import MixedModels

/// Progress of long fits (issues 14 and 16): the library reports each Newton, BOBYQA and
/// matrix-free step (``FitStep``) with a forecast of the time left; the command line writes one
/// parseable line per step when standard error is not a terminal, and nothing with `--quiet`.
@Suite struct FitProgressTests {
    /// Collects steps from a progress closure.
    final class Steps: @unchecked Sendable {
        private let lock = NSLock()
        private var steps: [FitStep] = []
        func append(_ step: FitStep) { lock.withLock { steps.append(step) } }
        var all: [FitStep] { lock.withLock { steps } }
    }

    /// Collects the reporter's text.
    final class Text: @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func append(_ more: String) { lock.withLock { text += more } }
        var value: String { lock.withLock { text } }
    }

    static var logPattern: Regex<(Substring, Substring, Substring, Substring?, Substring, Substring, Substring)> { #/^lmm: step (\d+) ([a-z]+): (?:criterion=(-?[0-9.]+) )?change=([0-9.e+-]+) elapsed=([0-9.]+)s remaining=([0-9]+s|unknown)(?: \| .*)?$/# }

    @Test func forecastFromGeometricConvergence() {
        var forecast = StepForecast(tolerance: 1e-6)
        #expect(forecast.record(change: 1, elapsed: 1) == nil)
        // Rate 0.1 per step, one second per step: from 1e-2, four more steps to 1e-6.
        #expect(forecast.record(change: 0.1, elapsed: 2) == 5)
        #expect(forecast.record(change: 0.01, elapsed: 3) == 4)
        #expect(forecast.record(change: 1e-7, elapsed: 4) == 0)
        var growing = StepForecast(tolerance: 1e-6)
        _ = growing.record(change: 1, elapsed: 1)
        #expect(growing.record(change: 2, elapsed: 2) == nil)
    }

    static func sleepstudy() throws -> LinearMixedModel {
        let formula = try Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
        let table = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: formula)
        return try LinearMixedModel(formula: formula, data: table)
    }

    /// Newton reports each iteration: numbered from 1, the criterion falling to the fit's, the
    /// decrement below the certificate's tolerance at the last.
    @Test func newtonReportsEachIteration() throws {
        let steps = Steps()
        var options = OptimizerOptions()
        options.algorithm = .newton
        options.progress = { steps.append($0) }
        let fit = try Self.sleepstudy().fit(criterion: .reml, options: options)
        let all = steps.all
        #expect(!all.isEmpty)
        #expect(all.map(\.step) == Array(1...all.count))
        #expect(all.allSatisfy { $0.method == "newton" && $0.criterion != nil })
        for (a, b) in zip(all, all.dropFirst()) {
            #expect(b.criterion! <= a.criterion! + 1e-9)
            #expect(b.elapsed >= a.elapsed)
        }
        #expect(abs(all.last!.criterion! - fit.objective) < 1e-6)
        #expect(all.last!.change < 1e-6)
    }

    /// BOBYQA reports each evaluation; the certifying Newton steps after it are reported too.
    @Test func bobyqaReportsEachEvaluation() throws {
        let steps = Steps()
        var options = OptimizerOptions()
        options.algorithm = .bobyqa
        options.progress = { steps.append($0) }
        let fit = try Self.sleepstudy().fit(criterion: .ml, options: options)
        let bobyqa = steps.all.filter { $0.method == "bobyqa" }
        #expect(bobyqa.count > 10)
        #expect(bobyqa.map(\.step) == Array(1...bobyqa.count))
        let best = bobyqa.compactMap(\.criterion).min()!
        #expect(abs(best - fit.objective) < 1e-4)
    }

    /// Not a terminal: one parseable line per step of a real fit, the fields those of the step;
    /// quiet: nothing. Exact steps wait for the patience; matrix-free ones do not.
    @Test func logLinesOnePerStep() throws {
        let steps = Steps()
        var options = OptimizerOptions()
        options.algorithm = .newton
        options.progress = { steps.append($0) }
        _ = try Self.sleepstudy().fit(criterion: .reml, options: options)

        let text = Text()
        let reporter = FitProgressReporter(mode: .log, criterionName: "REML criterion", patience: 0, write: { text.append($0) })
        for step in steps.all { reporter.report(step) }
        reporter.finish()
        let lines = text.value.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == steps.all.count)
        for (line, step) in zip(lines, steps.all) {
            let match = try #require(String(line).wholeMatch(of: Self.logPattern), "\(line)")
            #expect(Int(match.1) == step.step)
            #expect(match.2 == "newton")
            #expect(abs(Double(String(match.3!))! - step.criterion!) < 1e-5)
        }

        let quiet = Text()
        let silent = FitProgressReporter(mode: .quiet, criterionName: "REML criterion", patience: 0, write: { quiet.append($0) })
        for step in steps.all { silent.report(step) }
        silent.finish()
        #expect(quiet.value.isEmpty)

        let patient = Text()
        let waiting = FitProgressReporter(mode: .log, criterionName: "REML criterion", patience: 3600, write: { patient.append($0) })
        for step in steps.all { waiting.report(step) }
        #expect(patient.value.isEmpty)
        waiting.report(FitStep(method: "iterative", step: 1, criterion: nil, change: 0.5, elapsed: 0.1, secondsRemaining: nil, detail: "em"))
        #expect(patient.value == "lmm: step 1 iterative: change=5.000e-01 elapsed=0.1s remaining=unknown | em\n")
    }

    /// `lmm fit --method iterative` with standard error a pipe: one log line per iteration, as
    /// many as the report's iterations; `--quiet`: none.
    @Test func iterativeCommandLogsEachIteration() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("fit.json").path
        let data = Fixtures.path("Penicillin.csv"), formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
        let run = try CommandRunner.run(["fit", data, "-f", formula, "--method", "iterative", "--probes", "8", "--json", json])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stderr.split(separator: "\n").filter { $0.hasPrefix("lmm: step ") }
        let report = try FitReport.load(path: json)
        #expect(lines.count == report.iterations)
        for (index, line) in lines.enumerated() {
            let match = try #require(String(line).wholeMatch(of: Self.logPattern), "\(line)")
            #expect(Int(match.1) == index + 1)
            #expect(match.2 == "iterative")
            #expect(line.contains("CG iterations"))
        }
        let quiet = try CommandRunner.run(["fit", data, "-f", formula, "--method", "iterative", "--probes", "8", "--quiet"])
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(!quiet.stderr.contains("lmm: step"))
        #expect(quiet.stdout.isEmpty)
    }
}
