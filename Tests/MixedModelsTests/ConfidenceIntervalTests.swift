import Foundation
import Testing
@testable import MixedModels

/// `confint` against lme4 1.1-31 (Tests/MixedModelsTests/R/confint_reference.R): profile
/// intervals within 1e-3 of the interval width, Wald to 1e-8, bootstrap percentiles within
/// Monte Carlo error, bootstrap replicates the same for any number of threads.
@Suite("Confidence intervals against lme4")
struct ConfidenceIntervalTests {
    struct Table: Decodable {
        var names: [String]
        var lower: [Double?]
        var upper: [Double?]
        var sd: [Double]?
        var nsim: Int?
    }

    struct Reference: Decodable {
        var formula: String
        var data: String
        var profile: Table
        var wald: Table
        var boot: Table?
    }

    static func reference(_ name: String) throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("confint_\(name).json"))))
    }

    static func fitted(_ reference: Reference) throws -> (LinearMixedModel, FitResult) {
        let formula = try Formula.parse(reference.formula)
        let model = try LinearMixedModel(formula: formula, data: try CSVReader.read(path: Fixtures.path(reference.data), for: formula))
        return (model, try model.fit(criterion: .reml))
    }

    @Test("profile intervals within 1e-3 of the width of lme4's confint(m, method = 'profile')",
          arguments: ["sleepstudy", "dyestuff", "penicillin", "dyestuff2"])
    func profile(name: String) throws {
        let reference = try Self.reference(name)
        let (model, fit) = try Self.fitted(reference)
        let intervals = try model.profile(from: fit).intervals(level: 0.95)
        #expect(intervals.rows.map(\.name) == reference.profile.names)
        for (row, index) in zip(intervals.rows, reference.profile.names.indices) {
            let lower = reference.profile.lower[index]!, upper = reference.profile.upper[index]!
            let width = upper - lower
            #expect(abs(row.lower! - lower) <= 1e-3 * width, "\(row.name) lower \(row.lower!) vs \(lower)")
            #expect(abs(row.upper! - upper) <= 1e-3 * width, "\(row.name) upper \(row.upper!) vs \(upper)")
        }
    }

    @Test("the profile is the same with 1 and 2 threads")
    func profileThreads() throws {
        let (model, fit) = try Self.fitted(try Self.reference("dyestuff"))
        let one = try model.profile(from: fit, threads: 1), two = try model.profile(from: fit, threads: 2)
        #expect(one.traces.map(\.parameter) == two.traces.map(\.parameter))
        #expect(one.traces.map(\.zeta) == two.traces.map(\.zeta))
        #expect(one.csv.hasPrefix("parameter,value,zeta\n.sig01,"))
    }

    @Test("Wald intervals as lme4's (1e-8), NA for the variance parameters", arguments: ["sleepstudy", "dyestuff"])
    func wald(name: String) throws {
        let reference = try Self.reference(name)
        let (model, fit) = try Self.fitted(reference)
        let intervals = model.waldIntervals(fit, level: 0.95)
        #expect(intervals.rows.map(\.name) == reference.wald.names)
        for (row, index) in zip(intervals.rows, reference.wald.names.indices) {
            if let lower = reference.wald.lower[index], let upper = reference.wald.upper[index] {
                #expect(Compare.relative(row.lower!, lower) <= 1e-8, "\(row.name)")
                #expect(Compare.relative(row.upper!, upper) <= 1e-8, "\(row.name)")
            } else {
                #expect(row.lower == nil && row.upper == nil)
            }
        }
        #expect(intervals.table.contains("NA"))
    }

    /// Each percentile is compared on the probability scale, which holds also where the
    /// replicates have a point mass (a correlation of ±1, a standard deviation of 0): lme4's
    /// endpoint q must satisfy F̂(q−) − t ≤ α ≤ F̂(q) + t for our replicates' distribution
    /// function F̂, with t four standard errors of the two estimates' combined Monte Carlo error
    /// in probability, 4·√(α(1−α)(1/500 + 1/N)) (both samples' quantile positions are binomial).
    @Test("bootstrap percentiles within Monte Carlo error of lme4's bootMer", arguments: ["sleepstudy", "dyestuff"])
    func bootstrap(name: String) throws {
        let reference = try Self.reference(name)
        let (model, fit) = try Self.fitted(reference)
        let boot = try #require(reference.boot)
        let replicates = try ParametricBootstrap(model: model, fit: fit).run(replicates: 500, seed: 7)
        #expect(replicates.names == boot.names)
        let intervals = replicates.percentileIntervals(level: 0.95)
        let n = Double(replicates.estimates.compactMap { $0 }.count)
        #expect(n >= 495)
        let Rref = Double(boot.nsim ?? 500)
        for (c, name) in replicates.names.enumerated() {
            let values = replicates.estimates.compactMap { $0?[c] }
            for (alpha, endpoint) in [(0.025, boot.lower[c]!), (0.975, boot.upper[c]!)] {
                let tolerance = 4 * (alpha * (1 - alpha) * (1 / Rref + 1 / n)).squareRoot()
                let below = Double(values.filter { $0 < endpoint - 1e-9 * max(1, abs(endpoint)) }.count) / n
                let atOrBelow = Double(values.filter { $0 <= endpoint + 1e-9 * max(1, abs(endpoint)) }.count) / n
                #expect(below - tolerance <= alpha && alpha <= atOrBelow + tolerance,
                        "\(name) α = \(alpha): lme4's endpoint \(endpoint) has F̂ in [\(below), \(atOrBelow)]")
            }
            #expect(intervals.rows[c].lower! <= intervals.rows[c].upper!)
        }
    }

    @Test("bootstrap replicates are the same with 1, 2 and 5 threads, and differ with the seed")
    func determinism() throws {
        let reference = try Self.reference("sleepstudy")
        let (model, fit) = try Self.fitted(reference)
        let bootstrap = try ParametricBootstrap(model: model, fit: fit)
        let one = try bootstrap.run(replicates: 24, seed: 3, threads: 1)
        let two = try bootstrap.run(replicates: 24, seed: 3, threads: 2)
        let five = try bootstrap.run(replicates: 24, seed: 3, threads: 5)
        let other = try bootstrap.run(replicates: 24, seed: 4, threads: 2)
        #expect(one.estimates.count == 24)
        #expect(one.estimates.allSatisfy { $0 != nil })
        #expect(one.estimates == two.estimates && one.estimates == five.estimates)
        #expect(one.csv == two.csv)
        #expect(one.estimates != other.estimates)
    }

    @Test("simulated responses have the fit's mean and variance (sleepstudy, 400 draws)")
    func simulation() throws {
        let reference = try Self.reference("sleepstudy")
        let (model, fit) = try Self.fitted(reference)
        let simulator = ResponseSimulator(model: model, fit: fit)
        let draws = (0..<400).map { simulator.simulate(seed: 11, index: $0) }
        #expect(simulator.simulate(seed: 11, index: 5) == draws[5])
        // Row 0 (Subject 308, Days 0): mean β₀, variance σ₀² + σ²; standard errors of the mean
        // and of the variance from 400 normal draws.
        let values = draws.map { $0[0] }
        let mean = values.reduce(0, +) / 400
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 399
        let expected = fit.varianceComponents[0].vcov + fit.sigma * fit.sigma
        #expect(abs(mean - fit.fixedEffects[0]) < 4 * (expected / 400).squareRoot())
        #expect(abs(variance - expected) < 4 * expected * (2.0 / 399).squareRoot())
    }

    @Test("percentiles as boot's norm.inter (R: t = (1:500)^1.5/1000)")
    func percentile() {
        let t = (1...500).map { pow(Double($0), 1.5) / 1000 }
        let lower = ParametricBootstrap.Replicates.normalInterpolatedQuantile(t, 0.025)!
        let upper = ParametricBootstrap.Replicates.normalInterpolatedQuantile(t, 0.975)!
        #expect(abs(lower - 0.044397577060076479) < 1e-14)
        #expect(abs(upper - 10.795743032331101219) < 1e-12)
    }

    @Test("normal and χ² quantiles as R's qnorm and qchisq")
    func quantiles() {
        #expect(abs(Distributions.normalQuantile(0.975) - 1.959963984540054) < 1e-15)
        #expect(abs(Distributions.normalQuantile(1e-10) + 6.361340902404056) < 1e-12)
        #expect(abs(Distributions.chiSquaredQuantile(0.99, degreesOfFreedom: 6) - 16.811893829770927) < 1e-10)
        #expect(abs(Distributions.chiSquaredQuantile(0.99, degreesOfFreedom: 3) - 11.344866730144373) < 1e-10)
    }
}

/// `lmm confint`, `lmm simulate` and `lmm fit --plot` end to end.
@Suite("confint, simulate and plot commands")
struct InferenceCommandTests {
    let sleepstudy = Fixtures.path("sleepstudy.csv")
    let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    @Test("confint --method wald prints lme4's table and writes JSON")
    func wald() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("ci.json").path
        let result = try CommandRunner.run(["confint", sleepstudy, "-f", formula, "--method", "wald", "--json", json])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("2.5 %"))
        #expect(result.stdout.contains(".sig01"))
        #expect(result.stderr.contains("NA"))
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
        #expect((document["intervals"] as! [Any]).count == 6)
    }

    @Test("boot writes the replicates; --nsim 0 is an error and writes nothing")
    func boot() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let replicates = directory.appendingPathComponent("boot.csv").path
        let good = try CommandRunner.run(["confint", sleepstudy, "-f", formula, "--method", "boot", "--nsim", "20",
                                          "--seed", "5", "--replicates", replicates])
        #expect(good.status == 0, "\(good.stderr)")
        let lines = try String(contentsOfFile: replicates, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 21)
        #expect(lines.first == "replicate,.sig01,.sig02,.sig03,.sigma,(Intercept),Days")

        let other = directory.appendingPathComponent("none.csv").path
        for nsim in ["0", "-3"] {
            let bad = try CommandRunner.run(["confint", sleepstudy, "-f", formula, "--method", "boot", "--nsim=\(nsim)", "--replicates", other])
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("--nsim must be at least 1"))
            #expect(!FileManager.default.fileExists(atPath: other))
        }
        let missing = try CommandRunner.run(["confint", sleepstudy, "-f", formula, "--method", "boot"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("--nsim"))
    }

    @Test("bad input: an unknown column, a level outside (0, 1), options of another method")
    func badInput() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let json = directory.appendingPathComponent("ci.json").path
        let cases: [([String], String)] = [
            (["-f", "Reaction ~ 1 + Dayz + (1 | Subject)"], "Dayz"),
            (["-f", formula, "--level", "1.5"], "--level"),
            (["-f", formula, "--method", "wald", "--nsim", "10"], "--nsim applies to --method boot"),
            (["-f", formula, "--method", "wald", "--profile-csv", "p.csv"], "--profile-csv applies"),
        ]
        for (arguments, message) in cases {
            let result = try CommandRunner.run(["confint", sleepstudy] + arguments + ["--json", json])
            #expect(result.status != 0)
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: json))
        }
    }

    @Test("simulate writes one column per simulation, the same for the same seed")
    func simulate() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a.csv").path, b = directory.appendingPathComponent("b.csv").path
        for path in [a, b] {
            let result = try CommandRunner.run(["simulate", sleepstudy, "-f", formula, "--nsim", "3", "--seed", "9", "--out", path])
            #expect(result.status == 0, "\(result.stderr)")
        }
        let text = try String(contentsOfFile: a, encoding: .utf8)
        #expect(text == (try String(contentsOfFile: b, encoding: .utf8)))
        let lines = text.split(separator: "\n")
        #expect(lines.first == "sim_1,sim_2,sim_3")
        #expect(lines.count == 181)
        let bad = try CommandRunner.run(["simulate", sleepstudy, "-f", formula, "--nsim", "0", "--out", a + ".x"])
        #expect(bad.status != 0)
        #expect(!FileManager.default.fileExists(atPath: a + ".x"))
    }

    @Test("fit --plot writes the SVG files")
    func plot() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plots = directory.appendingPathComponent("plots").path
        let result = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--plot", plots, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: plots).sorted()
        #expect(names == ["caterpillar_Subject.svg", "qq_ranef_Subject.svg", "qq_residuals.svg", "residuals_vs_fitted.svg"])
    }
}
