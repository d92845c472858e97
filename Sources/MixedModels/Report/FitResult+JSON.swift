/// The JSON report: the key names of the lme4 reference JSONs (`theta`, `sigma`, `fixef`,
/// `fixef_se`, `varcorr`, `logLik`, `objective`, `AIC`, `BIC`, `nobs`, `ngroups`, `ranef`) so
/// fits compare directly, plus `algorithm`, `estimated` (REML, ML, or the quick form's fixed
/// point), `iterations`, `converged`, `singular`,
/// `messages`, `elapsed_seconds` and, for iterative methods, `trajectory`.
/// `method` is the criterion (`REML` or `ML`), as in the reference files.
extension FitResult {
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("formula", .string(formula)),
            ("method", .string(criterion.rawValue)),
            ("algorithm", .string(algorithm)),
            ("estimated", .string(estimated)),
            ("nobs", .integer(nobs)),
            ("theta", .array(theta.map(JSONValue.number))),
            ("sigma", .number(sigma)),
            ("fixef", .object(zip(fixedEffectNames, fixedEffects).map { ($0, .number($1)) })),
            ("fixef_se", .object(zip(fixedEffectNames, fixedEffectStandardErrors).map { ($0, .number($1)) })),
            ("varcorr", .array(varianceComponents.map(\.json))),
            ("logLik", .number(logLikelihood)),
            ("objective", .number(objective)),
            ("AIC", .number(AIC)),
            ("BIC", .number(BIC)),
            ("ngroups", .object(groups.map { ($0.name, .integer($0.levels)) })),
            ("iterations", .integer(iterations)),
            ("converged", .bool(converged)),
            ("singular", .bool(isSingular)),
            ("messages", .array(messages.map(JSONValue.string))),
            ("elapsed_seconds", .number(elapsedSeconds)),
        ]
        if !trajectory.isEmpty {
            members.append(("trajectory", .array(trajectory.map { point in
                .object([
                    ("iteration", .integer(point.iteration)),
                    ("objective", .number(point.objective)),
                    ("sigma", .number(point.sigma)),
                    ("varcorr", .array(point.varcorr.map(\.json))),
                    ("fixef", .object(zip(fixedEffectNames, point.fixef).map { ($0, .number($1)) })),
                ])
            })))
        }
        if randomEffects.allSatisfy({ $0.value.isFinite && $0.condSD.isFinite }) {
            members.append(("ranef", .raw(ranefJSON)))
        } else {
            // Through the checked writer, which refuses the non-finite number with its path.
            members.append(("ranef", .array(randomEffects.map { row in
                .object([("factor", .string(row.factor)), ("term", .string(row.term)), ("level", .string(row.level)),
                         ("value", .number(row.value)), ("condSD", .number(row.condSD))])
            })))
        }
        return .object(members)
    }
}

extension FitResult {
    /// The `ranef` array, one record per line, written directly (a model can have millions of
    /// random effects); ``json`` uses it only when every value is finite.
    var ranefJSON: String {
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
