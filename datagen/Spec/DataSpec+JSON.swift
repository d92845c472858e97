import MixedModels

extension DataSpec {
    /// The spec as a spec file (``DataSpec/parse(_:source:)`` reads it back to an equal spec).
    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("rows", .integer(rows)),
            ("seed", .integer(Int(clamping: seed))),
            ("response", .string(response)),
            ("intercept", .number(intercept)),
            ("covariates", .array(covariates.map { covariate in
                .object([("name", .string(covariate.name)), ("coefficient", .number(covariate.coefficient)),
                         ("mean", .number(covariate.mean)), ("sd", .number(covariate.sd))])
            })),
            ("factors", .array(factors.map(\.json))),
            ("random", .array(random.map(\.json))),
            ("sigma", .number(sigma)),
        ]
        if rowsPerChunk != 65_536 { members.append(("rowsPerChunk", .integer(rowsPerChunk))) }
        return .object(members)
    }
}

extension DataSpec.FactorSpec {
    var json: JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name)), ("levels", .integer(levels))]
        if let labels { members.append(("labels", .array(labels.map { .string($0) }))) }
        if let prefix { members.append(("prefix", .string(prefix))) }
        switch distribution {
        case .uniform:
            members.append(("distribution", .string("uniform")))
        case .zipf(let s):
            members.append(("distribution", .string("zipf")))
            members.append(("exponent", .number(s)))
        case .probabilities(let p):
            members.append(("distribution", .string("probabilities")))
            members.append(("probabilities", .array(p.map { .number($0) })))
        }
        if let parent { members.append(("parent", .string(parent))) }
        if let coefficients {
            let labels = LevelLabels(self)
            let ordered = coefficients.sorted { (labels.code(of: $0.key) ?? 0, $0.key) < (labels.code(of: $1.key) ?? 0, $1.key) }
            members.append(("coefficients", .object(ordered.map { ($0.key, .number($0.value)) })))
        }
        return .object(members)
    }
}

extension DataSpec.RandomSpec {
    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("group", .string(group)),
            ("effects", .array(effects.map { .string($0) })),
        ]
        func matrix(_ rows: [[Double]]) -> JSONValue { .array(rows.map { .array($0.map { .number($0) }) }) }
        switch scale {
        case .sd(let sd, let correlation):
            members.append(("sd", .array(sd.map { .number($0) })))
            if let correlation { members.append(("correlation", matrix(correlation))) }
        case .covariance(let sigma):
            members.append(("covariance", matrix(sigma)))
        }
        return .object(members)
    }
}
