import Foundation

/// Confidence intervals for the variance parameters (lme4's `.sig01`, …, `.sigma`) and the
/// fixed effects, as lme4's `confint(m, method = …)` prints them.
public struct ConfidenceIntervals: Sendable {
    /// How the intervals were obtained.
    public enum Method: String, Sendable, CaseIterable {
        case wald
        case profile
        case boot
    }

    /// One parameter's interval; nil bounds print as NA (Wald intervals of variance parameters).
    public struct Row: Sendable, Equatable {
        public var name: String
        public var lower: Double?
        public var upper: Double?
    }

    public var method: Method
    public var level: Double
    public var rows: [Row]
    public var messages: [String]

    /// Column headings as R's `format.perc`: `2.5 %`, `97.5 %`.
    public var columnNames: [String] {
        let a = (1 - level) / 2
        return [a, 1 - a].map { Self.percent($0) }
    }

    /// R's `format.perc(a, 3)`: three significant digits, then " %".
    static func percent(_ probability: Double) -> String {
        var text = String(format: "%.3g", 100 * probability)
        if text.contains("e") { text = String(100 * probability) }
        return text + " %"
    }

    /// The table as R prints the matrix: names left-aligned, each column with as many decimals
    /// as its value needing the most takes to show 7 significant digits (R's `formatReal`).
    public var table: String {
        let nameWidth = rows.map(\.name.count).max() ?? 0
        let columns = [rows.map(\.lower), rows.map(\.upper)]
        let cells = columns.map { column -> [String] in
            let decimals = column.compactMap { $0 }.filter(\.isFinite).map(Self.decimalsFor7Digits).max() ?? 0
            return column.map { value in
                guard let value else { return "NA" }
                if !value.isFinite { return value > 0 ? "Inf" : value < 0 ? "-Inf" : "NaN" }
                return String(format: "%.\(decimals)f", value)
            }
        }
        let headers = columnNames
        let widths = (0..<2).map { c in max(headers[c].count, cells[c].map(\.count).max() ?? 0) }
        var text = String(repeating: " ", count: nameWidth)
        for c in 0..<2 { text += " " + pad(headers[c], widths[c]) }
        text += "\n"
        for (r, row) in rows.enumerated() {
            text += row.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            for c in 0..<2 { text += " " + pad(cells[c][r], widths[c]) }
            text += "\n"
        }
        return text
    }

    /// Decimals that show `value` to 7 significant digits, trailing zeros dropped.
    static func decimalsFor7Digits(_ value: Double) -> Int {
        guard value != 0 else { return 0 }
        var decimals = max(0, min(15, 6 - Int(log10(abs(value)).rounded(.down))))
        let text = String(format: "%.\(decimals)f", value)
        var trailing = text.reversed().prefix { $0 == "0" }.count
        while trailing > 0 && decimals > 0 { decimals -= 1; trailing -= 1 }
        return decimals
    }

    private func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    /// `{"method", "level", "intervals": [{"parameter", "lower", "upper"}], "messages"}`; NA as
    /// null, an unbounded end (a profile that never reaches the cut-off) as the string "Inf"/"-Inf".
    package var json: JSONValue {
        .object([
            ("method", .string(method.rawValue)),
            ("level", .number(level)),
            ("intervals", .array(rows.map { row in
                .object([
                    ("parameter", .string(row.name)),
                    ("lower", Self.value(row.lower)),
                    ("upper", Self.value(row.upper)),
                ])
            })),
            ("messages", .array(messages.map { .string($0) })),
        ])
    }

    private static func value(_ bound: Double?) -> JSONValue {
        guard let bound else { return .null }
        if bound.isFinite { return .number(bound) }
        return bound.isNaN ? .null : .string(bound > 0 ? "Inf" : "-Inf")
    }
}

extension LinearMixedModel {
    /// lme4's `confint(m, method = "Wald")` for a fit of this model: β̂ ± z·SE for the fixed
    /// effects; the variance parameters get no Wald interval (NA), as in lme4.
    public func waldIntervals(_ fit: FitResult, level: Double) -> ConfidenceIntervals {
        let z = Distributions.normalQuantile((1 + level) / 2)
        let variance = StandardDeviationScale(parameters: parameters).names
            .map { ConfidenceIntervals.Row(name: $0, lower: nil, upper: nil) }
        let fixed = fit.fixedEffectNames.indices.map { j in
            ConfidenceIntervals.Row(name: fit.fixedEffectNames[j],
                                    lower: fit.fixedEffects[j] - z * fit.fixedEffectStandardErrors[j],
                                    upper: fit.fixedEffects[j] + z * fit.fixedEffectStandardErrors[j])
        }
        return ConfidenceIntervals(method: .wald, level: level, rows: variance + fixed,
                                   messages: ["Wald intervals are given for the fixed effects only; the variance parameters get NA, as in lme4"])
    }
}
