import Foundation

/// The JSON report of a fit (`lmm fit --json`), as a `Codable` document: the key names of the
/// lme4 reference JSONs (`formula`, `method`, `nobs`, `theta`, `sigma`, `fixef`, `fixef_se`,
/// `varcorr`, `logLik`, `objective`, `AIC`, `BIC`, `ngroups`, `ranef`) plus this project's
/// `algorithm`, `iterations`, `converged`, `singular`, `messages`, `elapsed_seconds`, for
/// stochastic fits `mc_se` (``MonteCarloErrors``) and, for iterative methods, `trajectory`. The keys only this project writes are optional, so that an
/// lme4 reference file decodes too.
///
/// ``FitResult/report`` builds it and ``FitResult/jsonText()`` writes it; read a report back
/// with ``FitReport/load(path:)`` or `JSONDecoder`.
///
///     let report = try FitReport.load(path: "fit.json")
///     let days = report.fixef["Days"]
public struct FitReport: Codable, Sendable, Equatable {
    /// The model formula.
    public var formula: String
    /// The criterion (`REML` or `ML`), under lme4's key `method`.
    public var method: Criterion
    /// How the variance components were obtained (absent in lme4's files).
    public var algorithm: FitMethod?
    /// What the variance components estimate (``FitResult/estimated``; absent in lme4's files).
    public var estimated: String?
    /// Observations used.
    public var nobs: Int
    /// θ, lme4's relative covariance parameters.
    public var theta: [Double]
    /// Residual standard deviation σ.
    public var sigma: Double
    /// β̂ by coefficient name.
    public var fixef: NamedValues<Double>
    /// Standard errors of β̂ (`fixef_se`).
    public var fixefSE: NamedValues<Double>
    /// lme4's `as.data.frame(VarCorr(m))` rows.
    public var varcorr: [VarCorrEntry]
    /// The log-likelihood.
    public var logLik: Double
    /// The REML criterion or the deviance.
    public var objective: Double
    /// Akaike's criterion.
    public var AIC: Double
    /// Schwarz's criterion.
    public var BIC: Double
    /// Levels per grouping factor.
    public var ngroups: NamedValues<Int>
    /// Iterations (objective evaluations for the exact method).
    public var iterations: Int?
    /// Whether the method converged.
    public var converged: Bool?
    /// lme4's `isSingular`.
    public var singular: Bool?
    /// Messages for the user.
    public var messages: [String]?
    /// Wall time of the fit (`elapsed_seconds`).
    public var elapsedSeconds: Double?
    /// Stochastic fits: the Monte Carlo standard errors of the estimates that rest on probes
    /// (`mc_se`, ``MonteCarloErrors``).
    public var mcSE: MonteCarloErrors?
    /// Iterative methods: the state after each iteration.
    public var trajectory: [Iteration]?
    /// Absent when lme4 was run without conditional modes.
    public var ranef: [RanefRow]?

    /// One iteration of an iterative method.
    public struct Iteration: Codable, Sendable, Equatable {
        /// 1-based.
        public var iteration: Int
        /// The REML criterion or the deviance.
        public var objective: Double
        /// Residual standard deviation σ.
        public var sigma: Double
        /// lme4's `as.data.frame(VarCorr(m))` rows.
        public var varcorr: [VarCorrEntry]
        /// β̂ by coefficient name.
        public var fixef: NamedValues<Double>
    }

    enum CodingKeys: String, CodingKey {
        case formula, method, algorithm, estimated, nobs, theta, sigma, fixef
        case fixefSE = "fixef_se"
        case varcorr, logLik, objective, AIC, BIC, ngroups, iterations, converged, singular, messages
        case elapsedSeconds = "elapsed_seconds"
        case mcSE = "mc_se"
        case trajectory, ranef
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formula = try c.decode(String.self, forKey: .formula)
        method = try c.decode(Criterion.self, forKey: .method)
        algorithm = try c.decodeIfPresent(FitMethod.self, forKey: .algorithm)
        estimated = try c.decodeIfPresent(String.self, forKey: .estimated)
        nobs = try c.decode(Int.self, forKey: .nobs)
        // R's jsonlite writes a length-one θ as a bare number.
        if let scalar = try? c.decode(Double.self, forKey: .theta) { theta = [scalar] } else { theta = try c.decode([Double].self, forKey: .theta) }
        sigma = try c.decode(Double.self, forKey: .sigma)
        fixef = try c.decode(NamedValues<Double>.self, forKey: .fixef)
        fixefSE = try c.decode(NamedValues<Double>.self, forKey: .fixefSE)
        varcorr = try c.decode([VarCorrEntry].self, forKey: .varcorr)
        logLik = try c.decode(Double.self, forKey: .logLik)
        objective = try c.decode(Double.self, forKey: .objective)
        AIC = try c.decode(Double.self, forKey: .AIC)
        BIC = try c.decode(Double.self, forKey: .BIC)
        ngroups = try c.decode(NamedValues<Int>.self, forKey: .ngroups)
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations)
        converged = try c.decodeIfPresent(Bool.self, forKey: .converged)
        singular = try c.decodeIfPresent(Bool.self, forKey: .singular)
        messages = try c.decodeIfPresent([String].self, forKey: .messages)
        elapsedSeconds = try c.decodeIfPresent(Double.self, forKey: .elapsedSeconds)
        mcSE = try c.decodeIfPresent(MonteCarloErrors.self, forKey: .mcSE)
        trajectory = try c.decodeIfPresent([Iteration].self, forKey: .trajectory)
        ranef = try c.decodeIfPresent([RanefRow].self, forKey: .ranef)
    }

    /// Reads a report (this project's `--json` output or an lme4 reference file).
    /// - Parameter path: the JSON file.
    /// - Throws: ``InputError`` naming the file when it cannot be read or is not a report.
    public static func load(path: String) throws -> FitReport {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else { throw InputError("cannot read the file", file: name) }
        return try decode(data, source: name)
    }

    /// Decodes a report from JSON text.
    /// - Throws: ``InputError`` with `source` as the file when the text is not a report.
    public static func decode(_ data: Data, source: String) throws -> FitReport {
        do {
            return try JSONDecoder().decode(FitReport.self, from: data)
        } catch let error as DecodingError {
            throw InputError("not a fit report: \(VarianceComponents.describe(error))", file: source)
        } catch {
            throw InputError("not valid JSON: \(error.localizedDescription)", file: source)
        }
    }
}

/// A JSON object of named values in the order written (`fixef`, `fixef_se`, `ngroups`).
public struct NamedValues<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    /// The keys, in order.
    public var names: [String]
    /// The value of each key.
    public var values: [Value]

    /// Values named by `names` (one each).
    public init(names: [String], values: [Value]) {
        precondition(names.count == values.count, "one value per name")
        self.names = names
        self.values = values
    }

    /// The value of `name`, nil when there is none.
    public subscript(name: String) -> Value? {
        names.firstIndex(of: name).map { values[$0] }
    }

    /// Number of values.
    public var count: Int { names.count }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// In the decoder's key order (Foundation's `JSONDecoder` does not promise the document's).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        names = container.allKeys.map(\.stringValue)
        values = try container.allKeys.map { try container.decode(Value.self, forKey: $0) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in zip(names, values) { try container.encode(value, forKey: Key(stringValue: name)) }
    }
}
