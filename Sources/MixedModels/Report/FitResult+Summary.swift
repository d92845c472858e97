import Foundation

/// The text summary, in the layout of lme4's `summary(lmer(...))`.
extension FitResult {
    /// What the variance components estimate: `REML` or `ML` (exact, EM and evidence fits,
    /// whose fixed point is that optimum), the quick form's own fixed point, or given values.
    public var estimated: String {
        switch method {
        case .mackay(.quick): "the quick fixed point (neither REML nor ML)"
        case .given: "given variances"
        case .adam: "streaming Adam estimates (not a certified REML/ML optimum)"
        case .exact, .mackay, .iterative: criterion.rawValue
        }
    }

    /// - Parameter dataName: the data source shown on the `Data:` line.
    public func summary(dataName: String) -> String {
        var out: [String] = []
        switch method {
        case .exact:
            out.append(criterion == .reml ? "Linear mixed model fit by REML ['lmerMod']"
                                          : "Linear mixed model fit by maximum likelihood  ['lmerMod']")
        case .given:
            out.append("Linear mixed model with given variance components (\(criterion == .reml ? "REML" : "ML") criterion at these variances)")
        default:
            // What was estimated, how many iterations and whether it converged (issue 13).
            let state = "\(iterations) iterations, \(converged ? "converged" : "not converged")"
            if method == .mackay(.quick) {
                out.append("Linear mixed model fit by \(method.name): \(estimated), \(criterion.rawValue) criterion reported (\(state))")
            } else {
                out.append("Linear mixed model fit by \(method.name): \(estimated) estimates (\(state))")
            }
        }
        out.append("Formula: \(formula)")
        out.append("   Data: \(dataName)")
        out.append("")
        if criterion == .reml {
            let approximate = monteCarloErrors.map { String(format: " (approximate: Monte Carlo s.e. %.2g)", $0.objective) } ?? ""
            out.append("REML criterion at convergence: \(Self.fixed(objective, 1))" + approximate)
        } else {
            let cells = [Self.fixed(AIC, 1), Self.fixed(BIC, 1), Self.fixed(logLikelihood, 1), Self.fixed(objective, 1), String(nobs - fixedEffects.count)]
            out.append(Self.table(header: ["AIC", "BIC", "logLik", "deviance", "df.resid"], rows: [cells]))
            if let errors = monteCarloErrors {
                out.append(String(format: "(approximate: Monte Carlo s.e. of AIC, BIC and deviance %.2g, of logLik %.2g)",
                                  errors.objective, errors.logLik))
            }
        }
        out.append("")
        if scaledResidualQuantiles.count == 5 {
            out.append("Scaled residuals: ")
            out.append(Self.table(header: ["Min", "1Q", "Median", "3Q", "Max"],
                                  rows: [scaledResidualQuantiles.map { Self.fixed($0, 4) }]))
            out.append("")
        }
        out.append("Random effects:")
        out.append(randomEffectsTable())
        let groupText = groups.map { "\($0.name), \($0.levels)" }.joined(separator: "; ")
        out.append("Number of obs: \(nobs), groups:  \(groupText)")
        if let errors = monteCarloErrors { out.append(contentsOf: Self.monteCarloLines(errors)) }
        out.append("")
        out.append("Fixed effects:")
        out.append(fixedEffectsTable())
        if fixedEffects.count > 1 {
            out.append("")
            out.append("Correlation of Fixed Effects:")
            out.append(correlationTable())
        }
        if !messages.isEmpty {
            out.append("")
            out.append(contentsOf: messages)
        }
        return out.joined(separator: "\n") + "\n"
    }

    private func randomEffectsTable() -> String {
        // Rows per term: one per effect, correlations to the earlier effects of the term.
        var rows: [[String]] = []
        var maxCorrelations = 0
        var index = 0
        let entries = varianceComponents
        while index < entries.count {
            let grp = entries[index].grp
            if grp == "Residual" {
                rows.append(["Residual", "", Self.significant(entries[index].vcov, 5), Self.significant(entries[index].sdcor ?? 0, 5)])
                index += 1
                continue
            }
            var variances: [VarCorrEntry] = []
            var correlations: [String: Double] = [:]
            while index < entries.count && entries[index].grp == grp {
                let entry = entries[index]
                if let var2 = entry.var2 { correlations[entry.var1! + "\u{1}" + var2] = entry.sdcor ?? 0 } else { variances.append(entry) }
                index += 1
            }
            let groupName = grp.replacingOccurrences(of: #"\.[0-9]+$"#, with: "", options: .regularExpression)
            for (r, entry) in variances.enumerated() {
                var row = [r == 0 ? groupName : "", entry.var1 ?? "", Self.significant(entry.vcov, 5), Self.significant(entry.sdcor ?? 0, 5)]
                for s in 0..<r {
                    let value = correlations[variances[s].var1! + "\u{1}" + entry.var1!] ?? 0
                    row.append(String(format: "%.2f", value))
                }
                maxCorrelations = max(maxCorrelations, r)
                rows.append(row)
            }
        }
        var header = ["Groups", "Name", "Variance", "Std.Dev."]
        if maxCorrelations > 0 { header.append("Corr") }
        for r in rows.indices { while rows[r].count < header.count + max(0, maxCorrelations - 1) { rows[r].append("") } }
        if maxCorrelations > 1 { header += [String](repeating: "", count: maxCorrelations - 1) }
        return Self.table(header: header, rows: rows, leftAligned: 2)
    }

    /// The Monte Carlo standard errors of the variance components (approximate quantities) and
    /// a summary of those of the conditional SDs.
    static func monteCarloLines(_ errors: MonteCarloErrors) -> [String] {
        let rows = errors.varcorr.map { entry -> [String] in
            let name = entry.var2.map { "\(entry.var1 ?? ""),\($0)" } ?? entry.var1 ?? ""
            let group = entry.grp.replacingOccurrences(of: #"\.[0-9]+$"#, with: "", options: .regularExpression)
            return [group, name, String(format: "%.2g", entry.vcov), String(format: "%.2g", entry.sdcor ?? 0)]
        }
        var lines = ["Approximate (stochastic traces, \(errors.probes) probes); Monte Carlo standard errors:",
                     table(header: ["Groups", "Name", "Variance", "Std.Dev./Corr"], rows: rows, leftAligned: 2)]
        if !errors.condSD.isEmpty {
            lines.append("condSD approximate, relative Monte Carlo s.e.: " + errors.condSD.map { entry in
                String(format: "%@ %@ median %.2g, largest %.2g", entry.factor, entry.term, entry.relativeMedian, entry.relativeMax)
            }.joined(separator: "; "))
        }
        return lines
    }

    private func fixedEffectsTable() -> String {
        let estimates = Self.column(fixedEffects)
        let errors = Self.column(fixedEffectStandardErrors)
        let t = Self.column(zip(fixedEffects, fixedEffectStandardErrors).map { $1 > 0 ? $0 / $1 : 0 })
        let rows = fixedEffectNames.indices.map { [fixedEffectNames[$0], estimates[$0], errors[$0], t[$0]] }
        return Self.table(header: ["", "Estimate", "Std. Error", "t value"], rows: rows, leftAligned: 1)
    }

    private func correlationTable() -> String {
        let p = fixedEffects.count
        let names = fixedEffectNames.map(Self.abbreviate)
        var rows: [[String]] = []
        for i in 1..<p {
            var row = [names[i]]
            for j in 0..<i {
                let denominator = (fixedEffectCovariance[i, i] * fixedEffectCovariance[j, j]).squareRoot()
                row.append(String(format: "%.3f", denominator > 0 ? fixedEffectCovariance[i, j] / denominator : 0))
            }
            row += [String](repeating: "", count: p - 1 - i)
            rows.append(row)
        }
        return Self.table(header: [""] + names.dropLast(), rows: rows, leftAligned: 1)
    }

    // MARK: Formatting

    static func fixed(_ x: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", x) }

    /// Up to `digits` significant digits, as R prints a variance.
    static func significant(_ x: Double, _ digits: Int) -> String {
        if x == 0 { return "0" }
        let magnitude = Int(floor(log10(abs(x))))
        let decimals = max(0, min(8, digits - 1 - magnitude))
        return String(format: "%.\(decimals)f", x)
    }

    /// One decimal count for a column: enough for four significant digits of each entry.
    static func column(_ values: [Double]) -> [String] {
        var decimals = 0
        for x in values where x != 0 && x.isFinite {
            decimals = max(decimals, min(6, 3 - Int(floor(log10(abs(x))))))
        }
        return values.map { String(format: "%.\(decimals)f", $0) }
    }

    /// R's `abbreviate(name, 6)`: drop lower-case vowels from the right, then lower-case
    /// letters, then truncate (`(Intercept)` → `(Intr)`).
    static func abbreviate(_ name: String) -> String {
        var characters = Array(name)
        let limit = 6
        func drop(where predicate: (Character) -> Bool) {
            var index = characters.count - 1
            while characters.count > limit && index > 0 {
                if predicate(characters[index]) { characters.remove(at: index) }
                index -= 1
            }
        }
        drop { "aeiou".contains($0) }
        drop { $0.isLowercase }
        return String(characters.prefix(max(limit, 0)))
    }

    /// A table with right-aligned columns (the first `leftAligned` left-aligned), one space
    /// before each column, as R prints data frames.
    static func table(header: [String], rows: [[String]], leftAligned: Int = 0) -> String {
        let columns = header.count
        var widths = header.map(\.count)
        for row in rows { for (c, cell) in row.prefix(columns).enumerated() { widths[c] = max(widths[c], cell.count) } }
        func line(_ cells: [String]) -> String {
            var text = ""
            for c in 0..<columns {
                let cell = c < cells.count ? cells[c] : ""
                let padding = String(repeating: " ", count: widths[c] - cell.count)
                text += " " + (c < leftAligned ? cell + padding : padding + cell)
            }
            return text
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
