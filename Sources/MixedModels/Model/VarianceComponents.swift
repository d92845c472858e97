import Foundation

/// Variance components in lme4's `as.data.frame(VarCorr(m))` form — the `varcorr` list of the
/// reference JSONs and of this project's own JSON output — read for `--variances` and `--start`.
public struct VarianceComponents: Sendable {
    public var entries: [VarCorrEntry]
    /// Where the components came from, for messages.
    public var source: String

    public init(entries: [VarCorrEntry], source: String = "variances") {
        self.entries = entries
        self.source = source
    }

    /// Reads the `varcorr` list of a JSON file.
    /// - Parameter path: the JSON file (any fit's `--json` output, an lme4 reference, datagen's truth).
    /// - Throws: ``InputError`` naming the file when it cannot be read or has no valid `varcorr`.
    public static func load(path: String) throws -> VarianceComponents {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError("cannot read the file", file: name)
        }
        struct Document: Decodable { var varcorr: [VarCorrEntry] }
        do {
            let document = try JSONDecoder().decode(Document.self, from: data)
            return VarianceComponents(entries: document.varcorr, source: name)
        } catch let error as DecodingError {
            if let problem = JSONSyntax.firstProblem(Array(data)) {
                throw InputError("not valid JSON: \(problem.message)", file: name, line: problem.line, column: problem.column)
            }
            throw InputError("expected a JSON object with a \"varcorr\" list of {grp, var1, var2, vcov} entries: \(Self.describe(error))", file: name)
        } catch {
            throw InputError("not valid JSON: \(error.localizedDescription)", file: name)
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key '\(key.stringValue)' at \(path(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription) at \(path(context.codingPath))"
        case .dataCorrupted(let context): return context.debugDescription
        @unknown default: return "\(error)"
        }
    }

    /// Components for covariance matrices `covariances` (one per term, labelled `labels`, with
    /// effects `effectNames`) and σ², in lme4's order: each term's variances, then its
    /// covariances with their correlations in `sdcor`, then the residual.
    init(covariances: [Matrix], sigmaSquared: Double, labels: [String], effectNames: [[String]], source: String = "fit") {
        var entries: [VarCorrEntry] = []
        for (j, V) in covariances.enumerated() {
            let names = effectNames[j]
            for r in names.indices {
                entries.append(VarCorrEntry(grp: labels[j], var1: names[r], var2: nil, vcov: V[r, r], sdcor: V[r, r].squareRoot()))
            }
            for r in names.indices {
                for s in (r + 1)..<max(r + 1, names.count) {
                    let denominator = (V[r, r] * V[s, s]).squareRoot()
                    entries.append(VarCorrEntry(grp: labels[j], var1: names[r], var2: names[s], vcov: V[s, r],
                                                sdcor: denominator > 0 ? V[s, r] / denominator : 0))
                }
            }
        }
        entries.append(VarCorrEntry(grp: "Residual", var1: nil, var2: nil, vcov: sigmaSquared, sdcor: sigmaSquared.squareRoot()))
        self.init(entries: entries, source: source)
    }

    /// The covariance matrix of each term and the residual variance, matched to the model's
    /// terms by lme4's group labels (`Subject`, `Subject.1`, …) and effect names.
    func resolve(for frame: ModelFrame) throws -> (covariances: [Matrix], sigmaSquared: Double) {
        try resolve(labels: frame.termLabels, effectNames: frame.randomTerms.map(\.effectNames))
    }

    /// The covariance matrix of each term (labelled as lme4 does, `Subject`, `Subject.1`, with
    /// effects `effectNames`) and σ².
    /// - Throws: ``InputError`` for an unknown group or effect, a missing variance or residual,
    ///   a non-finite or negative variance, or a covariance that is not positive semi-definite
    ///   (naming the group).
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
        for (j, V) in covariances.enumerated() where SemidefiniteCholesky.factor(V, perEntry: true) == nil {
            throw InputError("the covariance matrix of group '\(labels[j])' is not positive semi-definite", file: source)
        }
        return (covariances, sigmaSquared)
    }
}

extension ModelFrame {
    /// lme4's group label of each term (``TermConventions/labels(groupingNames:)``).
    public var termLabels: [String] { TermConventions.labels(groupingNames: randomTerms.map(\.groupingName)) }
}
