/// Variance components matched to a streamed model's terms: the checks and messages of
/// ``VarianceComponents/resolve(for:)``, from the terms' labels and effect names instead of a
/// ``ModelFrame`` (a streamed model has none).
extension VarianceComponents {
    /// The covariance matrix of each term (labels as lme4's, `Subject`, `Subject.1`) and σ².
    /// - Throws: ``InputError`` for an unknown group or effect, a missing variance or residual,
    ///   a non-finite or negative variance, or a covariance that is not positive semi-definite.
    func resolve(labels: [String], effectNames: [[String]]) throws -> (covariances: [Matrix], sigmaSquared: Double) {
        var covariances = effectNames.map { Matrix(zeros: $0.count, $0.count) }
        var seenVariance = effectNames.map { [Bool](repeating: false, count: $0.count) }
        var sigmaSquared: Double?
        for (index, entry) in entries.enumerated() {
            let at = "varcorr[\(index)] (grp '\(entry.grp)')"
            guard entry.vcov.isFinite else { throw InputError("\(at): vcov must be a finite number", file: source) }
            if entry.grp == "Residual" {
                guard entry.vcov > 0 else {
                    throw InputError("\(at): the residual variance must be positive, got \(entry.vcov)", file: source)
                }
                sigmaSquared = entry.vcov
                continue
            }
            guard let j = labels.firstIndex(of: entry.grp) else {
                throw InputError("\(at): no random-effects term with group '\(entry.grp)'; the model's groups are \(labels.joined(separator: ", ")), Residual", file: source)
            }
            let names = effectNames[j]
            func effect(_ name: String?) throws -> Int {
                guard let name, let r = names.firstIndex(of: name) else {
                    throw InputError("\(at): unknown effect '\(name ?? "")'; group '\(entry.grp)' has \(names.joined(separator: ", "))", file: source)
                }
                return r
            }
            let r = try effect(entry.var1)
            if entry.var2 == nil {
                guard entry.vcov >= 0 else {
                    throw InputError("\(at): the variance of '\(names[r])' must not be negative, got \(entry.vcov)", file: source)
                }
                covariances[j][r, r] = entry.vcov
                seenVariance[j][r] = true
            } else {
                let s = try effect(entry.var2)
                covariances[j][r, s] = entry.vcov
                covariances[j][s, r] = entry.vcov
            }
        }
        for (j, seen) in seenVariance.enumerated() {
            if let missing = seen.firstIndex(of: false) {
                throw InputError("no variance given for effect '\(effectNames[j][missing])' of group '\(labels[j])'", file: source)
            }
        }
        guard let sigmaSquared else { throw InputError("no 'Residual' entry: the residual variance is needed", file: source) }
        for (j, V) in covariances.enumerated() where SemidefiniteCholesky.factor(V) == nil {
            throw InputError("the covariance matrix of group '\(labels[j])' is not positive semi-definite", file: source)
        }
        return (covariances, sigmaSquared)
    }
}
