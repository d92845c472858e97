import Foundation

/// The comparison printed as lme4's `print(anova(…))` and as JSON.
extension ModelComparison {
    /// lme4's layout: the data, the models, the table (5 significant digits, p-values with 4,
    /// significance stars) and the legend.
    public var table: String {
        var lines = ["Data: \(dataName)", "Models:"]
        lines += rows.map { "\($0.name): \($0.formula)" }
        let pValues = rows.map { $0.pValue.map(Self.pValue) ?? "" }
        let stars = rows.map { $0.pValue.map(Self.stars) ?? "" }
        let anyStars = stars.contains { !$0.isEmpty }
        // R's print.anova → printCoefmat: statistics columns through zapsmall(x, 5) (R 4.2:
        // round to 5 − log10(max |x|) decimals), Chisq rounded to 4 decimals, then format(digits = 5).
        func column(_ values: [Double?], test: Bool = false) -> [String] {
            let present = values.compactMap { $0 }
            let largest = present.map(abs).max() ?? 0
            let places = test ? 4 : largest > 0 ? max(0, Int((5 - log10(largest)).rounded())) : 5
            let scale = pow(10, Double(places))
            let zapped = values.map { $0.map { ($0 * scale).rounded() / scale } }
            let decimals = zapped.compactMap { $0 }.map { Self.decimals($0, digits: 5) }.max() ?? 0
            return zapped.map { $0.map { String(format: "%.\(decimals)f", $0) } ?? "" }
        }
        let columns = [rows.map { String($0.npar) }, column(rows.map(\.AIC)), column(rows.map(\.BIC)),
                       column(rows.map(\.logLik)), column(rows.map(\.deviance)), column(rows.map(\.chisq), test: true),
                       rows.map { $0.df.map(String.init) ?? "" }, pValues]
        var cells: [[String]] = rows.indices.map { i in [rows[i].name] + columns.map { $0[i] } }
        var header = ["", "npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
        if anyStars {
            header.append("")
            for i in cells.indices { cells[i].append(stars[i]) }
        }
        var text = lines.joined(separator: "\n") + "\n" + FitResult.table(header: header, rows: cells, leftAligned: 1)
            .split(separator: "\n", omittingEmptySubsequences: false).map { String($0.dropFirst()) }.joined(separator: "\n") + "\n"
        if anyStars { text += "---\nSignif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1\n" }
        return text
    }

    /// The table as JSON: `data`, and per model (in `npar` order) `name`, `formula`, `npar`,
    /// `AIC`, `BIC`, `logLik`, `deviance`, `Chisq`, `Df`, `Pr(>Chisq)` (null where R prints nothing).
    package var json: JSONValue {
        .object([
            ("data", .string(dataName)),
            ("refit", .string("ML")),
            ("models", .array(rows.map { row in
                .object([
                    ("name", .string(row.name)), ("formula", .string(row.formula)), ("npar", .integer(row.npar)),
                    ("AIC", .number(row.AIC)), ("BIC", .number(row.BIC)), ("logLik", .number(row.logLik)),
                    ("deviance", .number(row.deviance)), ("Chisq", row.chisq.map(JSONValue.number) ?? .null),
                    ("Df", row.df.map(JSONValue.integer) ?? .null), ("Pr(>Chisq)", row.pValue.map(JSONValue.number) ?? .null),
                ])
            })),
        ])
    }

    /// Decimals R's `format(x, digits = d)` shows for `x`: enough for `d` significant digits,
    /// fewer when the trailing ones are zeros.
    static func decimals(_ x: Double, digits: Int) -> Int {
        guard x != 0, x.isFinite else { return 0 }
        let magnitude = Int(floor(log10(abs(x))))
        var decimals = max(0, digits - 1 - magnitude)
        while decimals > 0 {
            let shorter = String(format: "%.\(decimals - 1)f", x)
            if Double(shorter)! != Double(String(format: "%.\(decimals)f", x))! { break }
            decimals -= 1
        }
        return decimals
    }

    /// R's `format.pval(p, digits = 4)`: `< 2.2e-16` below the machine epsilon, else the shorter
    /// of the fixed and scientific forms with up to 4 significant digits.
    static func pValue(_ p: Double) -> String {
        if p < Double.ulpOfOne { return "< 2.2e-16" }
        var digits = 4
        while digits > 1, Double(String(format: "%.\(digits - 2)e", p))! == Double(String(format: "%.\(digits - 1)e", p))! { digits -= 1 }
        let scientific = String(format: "%.\(digits - 1)e", p)
        let fixed = String(format: "%.\(max(0, digits - 1 - Int(floor(log10(p)))))f", p)
        return fixed.count <= scientific.count ? fixed : scientific
    }

    static func stars(_ p: Double) -> String {
        p < 0.001 ? "***" : p < 0.01 ? "**" : p < 0.05 ? "*" : p < 0.1 ? "." : " "
    }
}
