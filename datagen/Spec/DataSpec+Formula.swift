extension DataSpec {
    /// The lme4 formula of the true model: intercept, covariates, categorical covariates, then
    /// one `(effects | group)` per random term. A term with uncorrelated effects is written with
    /// a full covariance (`(1 + x | user)`), which contains the truth.
    var formula: String {
        let fixed = ["1"] + covariates.map(\.name) + factors.filter { $0.coefficients != nil }.map(\.name)
        let randomTerms = random.map { term in
            let effects = term.effects.first == "(Intercept)" ? ["1"] + term.effects.dropFirst() : ["0"] + term.effects
            return "(" + effects.joined(separator: " + ") + " | " + term.group + ")"
        }
        return response + " ~ " + (fixed + randomTerms).joined(separator: " + ")
    }

    /// The fixed effects under lme4's names, in model-matrix order: `(Intercept)`, each
    /// covariate, then `name` + label for each non-reference level (treatment contrasts).
    var fixedEffects: [(name: String, value: Double)] {
        var effects = [("(Intercept)", intercept)] + covariates.map { ($0.name, $0.coefficient) }
        for factor in factors {
            guard let coefficients = factor.coefficients else { continue }
            let labels = LevelLabels(factor)
            for code in 1..<factor.levels {
                let label = labels.label(code)
                effects.append((factor.name + label, coefficients[label] ?? 0))
            }
        }
        return effects
    }
}
