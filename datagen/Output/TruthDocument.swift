import Foundation
import MixedModels

/// The truth behind a generated data set, as JSON under the reference files' key names:
///
/// - `formula`: an lme4 formula of the true model;
/// - `fixef`: β by lme4's coefficient names; `sigma`: σ;
/// - `varcorr`: lme4's `as.data.frame(VarCorr(m))` rows of the true Σⱼ (variances, then
///   covariances with their correlations, per group; then `Residual`), readable as an
///   `lmm fit --variances` file; `theta`: lme4's θ of the truth;
/// - `nobs`; `ngroups`: levels that occur in the rows (lme4 drops the others); `levels`: each
///   factor's level count in the spec;
/// - `ranef`: the realized random effects of the levels that occur (`factor`, `term`, `level`,
///   `value`), in lme4's order (terms by decreasing number of levels, as `mkReTrms`);
/// - `spec`: the full spec, a spec file that regenerates the data (with `seed` and `rows`).
enum TruthDocument {
    /// One term in lme4's order, with its group label (made unique as `make.unique` does).
    private struct OrderedTerm {
        var index: Int
        var label: String
        var levelCount: Int
    }

    static func text(plan: GenerationPlan, origin: [(String, JSONValue)], ranef: Bool = true) throws -> String {
        let spec = plan.spec
        let terms = lme4Order(plan)

        var varcorr: [JSONValue] = []
        var theta: [JSONValue] = []
        for ordered in terms {
            let term = plan.terms[ordered.index]
            let sigma = term.spec.covariance
            let names = term.spec.effects
            for r in names.indices {
                varcorr.append(.object([("grp", .string(ordered.label)), ("var1", .string(names[r])),
                                        ("vcov", .number(sigma[r][r])), ("sdcor", .number(sigma[r][r].squareRoot()))]))
            }
            for r in names.indices {
                for s in (r + 1)..<max(names.count, r + 1) {
                    let scale = (sigma[r][r] * sigma[s][s]).squareRoot()
                    varcorr.append(.object([("grp", .string(ordered.label)), ("var1", .string(names[r])), ("var2", .string(names[s])),
                                            ("vcov", .number(sigma[r][s])), ("sdcor", .number(scale > 0 ? sigma[r][s] / scale : 0))]))
                }
            }
            let L = CovarianceFactor(sigma)!
            for s in names.indices {
                for r in s..<names.count { theta.append(.number(L.L[r * L.k + s] / spec.sigma)) }
            }
        }
        varcorr.append(.object([("grp", .string("Residual")), ("vcov", .number(spec.sigma * spec.sigma)),
                                ("sdcor", .number(spec.sigma))]))

        var ngroups: [(String, JSONValue)] = []
        for ordered in terms where !ngroups.contains(where: { $0.0 == plan.terms[ordered.index].spec.group }) {
            ngroups.append((plan.terms[ordered.index].spec.group, .integer(ordered.levelCount)))
        }

        let head: JSONValue = .object([
            ("formula", .string(spec.formula)),
            ("nobs", .integer(spec.rows)),
        ] + origin + [
            ("fixef", .object(spec.fixedEffects.map { ($0.name, .number($0.value)) })),
            ("sigma", .number(spec.sigma)),
            ("varcorr", .array(varcorr)),
            ("theta", .array(theta)),
            ("ngroups", .object(ngroups)),
            ("levels", .object(spec.factors.map { ($0.name, .integer($0.levels)) })),
            ("spec", spec.json),
        ])
        var text = try head.serialized()
        guard ranef else { return text }
        // Append the (long) ranef list as one compact object per line.
        text.removeLast(3)          // "\n}\n"
        text += ",\n  \"ranef\": ["
        var first = true
        for ordered in terms {
            let term = plan.terms[ordered.index]
            let levels = usedLevels(plan, term)
            for (e, effect) in term.spec.effects.enumerated() {
                // Labels are letters, digits and ':' (validated), so they need no escaping.
                let prefix = "{\"factor\": \(quoted(term.spec.group)), \"term\": \(quoted(effect)), \"level\": \""
                for (combination, label) in levels {
                    text += first ? "\n    " : ",\n    "
                    first = false
                    text += prefix
                    text += label
                    text += "\", \"value\": "
                    text += term.b[combination * term.k + e].description
                    text += "}"
                }
            }
        }
        text += first ? "]\n}\n" : "\n  ]\n}\n"
        return text
    }

    /// lme4's `mkReTrms` order by the number of levels that occur: when any term has more
    /// levels than the one before it, `rev(order(nl))` (decreasing, ties reversed).
    private static func lme4Order(_ plan: GenerationPlan) -> [OrderedTerm] {
        let counts = plan.terms.map { $0.used.reduce(0) { $0 + Int($1) } }
        var order = Array(plan.terms.indices)
        if zip(counts, counts.dropFirst()).contains(where: { $0 < $1 }) {
            order = order.sorted { counts[$0] != counts[$1] ? counts[$0] < counts[$1] : $0 < $1 }.reversed()
        }
        var seen: [String: Int] = [:]
        return order.map { index in
            let name = plan.terms[index].spec.group
            var label = name
            if let count = seen[name] {
                label = "\(name).\(count)"
                seen[name] = count + 1
            } else {
                seen[name] = 1
            }
            return OrderedTerm(index: index, label: label, levelCount: counts[index])
        }
    }

    /// The combinations of `term` that occur, with their labels (`l1:l2`), in R's level order
    /// (lexicographic in the factors as written, first slowest).
    private static func usedLevels(_ plan: GenerationPlan, _ term: GenerationPlan.TermPlan) -> [(Int, String)] {
        var levels: [(codes: [Int], combination: Int)] = []
        for combination in 0..<term.combinations where term.used[combination] != 0 {
            levels.append((term.factors.map { plan.code(of: $0, inCombination: combination, of: term) }, combination))
        }
        if term.factors != term.keys {
            levels.sort { $0.codes.lexicographicallyPrecedes($1.codes) }
        }
        return levels.map { level in
            (level.combination, zip(term.factors, level.codes).map { plan.labels[$0].label($1) }.joined(separator: ":"))
        }
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
