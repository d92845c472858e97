/// The JSON report: ``FitReport``, written by the ordered, non-finite-refusing writer of
/// ``JSONValue`` with the `ranef` records as direct text.
///
/// Why not `JSONEncoder`: on 10⁶ ranef rows (release build, `swiftc -O`, Swift 6.3.1, 2-core
/// Debian 12 machine, 2026-11-30) this writer took 2.9 s for 127 MB, `JSONEncoder` with
/// `.prettyPrinted` 6.9 s for 168 MB (its deeper indentation) — 2.4× to 3.6× slower over four
/// runs on the shared, loaded machine; reading the document back with `JSONDecoder` took
/// 20–23 s. Reports are decoded with `JSONDecoder` (``FitReport``) all the same: they are read
/// by tests and benchmarks, never on a fit's path.
extension FitResult {
    /// The report of this fit.
    public var report: FitReport {
        FitReport(
            formula: formula, method: criterion, algorithm: method, estimated: estimated, nobs: nobs, theta: theta, sigma: sigma,
            fixef: NamedValues(names: fixedEffectNames, values: fixedEffects),
            fixefSE: NamedValues(names: fixedEffectNames, values: fixedEffectStandardErrors),
            varcorr: varianceComponents, logLik: logLikelihood, objective: objective, AIC: AIC, BIC: BIC,
            ngroups: NamedValues(names: groups.map(\.name), values: groups.map(\.levels)),
            iterations: iterations, converged: converged, singular: isSingular, messages: messages,
            elapsedSeconds: elapsedSeconds, mcSE: monteCarloErrors,
            trajectory: trajectory.isEmpty ? nil : trajectory.map { point in
                FitReport.Iteration(iteration: point.iteration, objective: point.objective, sigma: point.sigma,
                                    varcorr: point.varcorr, fixef: NamedValues(names: fixedEffectNames, values: point.fixef))
            },
            ranef: randomEffects)
    }

    /// The document ``FitReport`` writes (``JSONValue/serialized()`` gives the text), with the
    /// `transformations` of the formula's variables after `elapsed_seconds` when there are any.
    package var json: JSONValue {
        let document = report.json
        guard !transformations.isEmpty, case .object(var members) = document else { return document }
        let position = (members.firstIndex { $0.0 == FitReport.CodingKeys.elapsedSeconds.rawValue }).map { $0 + 1 } ?? members.count
        members.insert(("transformations", .array(transformations)), at: position)
        return .object(members)
    }

    /// The JSON report as text, as `lmm fit --json` writes it.
    /// - Throws: ``LMMError/numerical(_:)`` naming the first non-finite number; nothing is
    ///   written with a NaN.
    public func jsonText() throws -> String {
        do {
            return try json.serialized()
        } catch let error as JSONValue.NonFiniteNumber {
            throw LMMError.numerical(error.description)
        }
    }
}

extension FitReport {
    /// Memberwise.
    package init(formula: String, method: Criterion, algorithm: FitMethod?, estimated: String? = nil, nobs: Int, theta: [Double], sigma: Double,
                fixef: NamedValues<Double>, fixefSE: NamedValues<Double>, varcorr: [VarCorrEntry], logLik: Double,
                objective: Double, AIC: Double, BIC: Double, ngroups: NamedValues<Int>, iterations: Int?,
                converged: Bool?, singular: Bool?, messages: [String]?, elapsedSeconds: Double?, mcSE: MonteCarloErrors? = nil,
                trajectory: [Iteration]?, ranef: [RanefRow]?) {
        self.formula = formula
        self.method = method
        self.algorithm = algorithm
        self.estimated = estimated
        self.nobs = nobs
        self.theta = theta
        self.sigma = sigma
        self.fixef = fixef
        self.fixefSE = fixefSE
        self.varcorr = varcorr
        self.logLik = logLik
        self.objective = objective
        self.AIC = AIC
        self.BIC = BIC
        self.ngroups = ngroups
        self.iterations = iterations
        self.converged = converged
        self.singular = singular
        self.messages = messages
        self.elapsedSeconds = elapsedSeconds
        self.mcSE = mcSE
        self.trajectory = trajectory
        self.ranef = ranef
    }

    /// The document, keys in the order of the lme4 reference files; absent optional keys are
    /// left out.
    package var json: JSONValue {
        typealias K = CodingKeys
        var members: [(String, JSONValue)] = [
            (K.formula.rawValue, .string(formula)),
            (K.method.rawValue, .string(method.rawValue)),
        ]
        if let algorithm { members.append((K.algorithm.rawValue, .string(algorithm.name))) }
        if let estimated { members.append((K.estimated.rawValue, .string(estimated))) }
        members += [
            (K.nobs.rawValue, .integer(nobs)),
            (K.theta.rawValue, .array(theta.map(JSONValue.number))),
            (K.sigma.rawValue, .number(sigma)),
            (K.fixef.rawValue, fixef.json(JSONValue.number)),
            (K.fixefSE.rawValue, fixefSE.json(JSONValue.number)),
            (K.varcorr.rawValue, .array(varcorr.map(\.json))),
            (K.logLik.rawValue, .number(logLik)),
            (K.objective.rawValue, .number(objective)),
            (K.AIC.rawValue, .number(AIC)),
            (K.BIC.rawValue, .number(BIC)),
            (K.ngroups.rawValue, ngroups.json(JSONValue.integer)),
        ]
        if let iterations { members.append((K.iterations.rawValue, .integer(iterations))) }
        if let converged { members.append((K.converged.rawValue, .bool(converged))) }
        if let singular { members.append((K.singular.rawValue, .bool(singular))) }
        if let messages { members.append((K.messages.rawValue, .array(messages.map(JSONValue.string)))) }
        if let elapsedSeconds { members.append((K.elapsedSeconds.rawValue, .number(elapsedSeconds))) }
        if let mcSE { members.append((K.mcSE.rawValue, mcSE.json)) }
        if let trajectory, !trajectory.isEmpty {
            members.append((K.trajectory.rawValue, .array(trajectory.map { point in
                .object([
                    ("iteration", .integer(point.iteration)),
                    ("objective", .number(point.objective)),
                    ("sigma", .number(point.sigma)),
                    ("varcorr", .array(point.varcorr.map(\.json))),
                    ("fixef", point.fixef.json(JSONValue.number)),
                ])
            })))
        }
        if let ranef {
            if ranef.allSatisfy({ $0.value.isFinite && $0.condSD.isFinite }) {
                members.append((K.ranef.rawValue, .raw(Self.ranefJSON(ranef))))
            } else {
                // Through the checked writer, which refuses the non-finite number with its path.
                members.append((K.ranef.rawValue, .array(ranef.map { row in
                    .object([("factor", .string(row.factor)), ("term", .string(row.term)), ("level", .string(row.level)),
                             ("value", .number(row.value)), ("condSD", .number(row.condSD))])
                })))
            }
        }
        return .object(members)
    }

    /// The `ranef` array, one record per line, written directly (a model can have millions of
    /// random effects); ``json`` uses it only when every value is finite.
    static func ranefJSON(_ randomEffects: [RanefRow]) -> String {
        if randomEffects.isEmpty { return "[]" }
        var out = "[\n"
        out.reserveCapacity(randomEffects.count * 96)
        for (index, row) in randomEffects.enumerated() {
            out += "    {\"factor\": "
            out += JSONValue.quoted(row.factor)
            out += ", \"term\": "
            out += JSONValue.quoted(row.term)
            out += ", \"level\": "
            out += JSONValue.quoted(row.level)
            out += ", \"value\": "
            out += row.value.description
            out += ", \"condSD\": "
            out += row.condSD.description
            out += index + 1 < randomEffects.count ? "},\n" : "}\n"
        }
        return out + "  ]"
    }
}

extension NamedValues {
    func json(_ value: (Value) -> JSONValue) -> JSONValue {
        .object(zip(names, values).map { ($0, value($1)) })
    }
}

extension VarCorrEntry {
    var json: JSONValue {
        var members: [(String, JSONValue)] = [("grp", .string(grp))]
        if let var1 { members.append(("var1", .string(var1))) }
        if let var2 { members.append(("var2", .string(var2))) }
        members.append(("vcov", .number(vcov)))
        if let sdcor { members.append(("sdcor", .number(sdcor))) }
        return .object(members)
    }
}

extension MonteCarloErrors {
    /// The `mc_se` object, keys named as the estimates they belong to.
    var json: JSONValue {
        .object([
            ("probes", .integer(probes)),
            ("theta", .array(theta.map(JSONValue.number))),
            ("sigma", .number(sigma)),
            ("varcorr", .array(varcorr.map(\.json))),
            ("logLik", .number(logLik)),
            ("objective", .number(objective)),
            ("AIC", .number(AIC)),
            ("BIC", .number(BIC)),
            ("condSD", .array(condSD.map { entry in
                .object([("factor", .string(entry.factor)), ("term", .string(entry.term)),
                         ("relative_median", .number(entry.relativeMedian)), ("relative_max", .number(entry.relativeMax))])
            })),
        ])
    }
}
