import Foundation

/// The outputs of the scaling suite: `results.csv` (one row per run), `results.md` (tables
/// with lme4 side by side) and `scaling.svg` (log-log time against rows, a panel per design,
/// a line per method).
struct ScalingReport {
    let results: [ScalingResult]
    let environment: String
    let command: String
    let lme4: Bool

    func write(to directory: String) throws {
        try csv().write(toFile: directory + "/results.csv", atomically: true, encoding: .utf8)
        try markdown().write(toFile: directory + "/results.md", atomically: true, encoding: .utf8)
        try svg().write(toFile: directory + "/scaling.svg", atomically: true, encoding: .utf8)
    }

    /// The distinct values, in order of first appearance.
    static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }

    private static func number(_ x: Double?, _ format: String) -> String { x.map { String(format: format, $0) } ?? "" }

    func csv() -> String {
        var lines = ["shape,rows,levels,method,status,seconds,peak_mb,iterations,objective,max_rel_error,note"]
        for r in results {
            let fields = [r.shape, String(r.rows), "\"\(r.levels)\"", r.method, r.status, String(format: "%.3f", r.seconds),
                          String(format: "%.0f", r.peakMegabytes), r.iterations.map(String.init) ?? "",
                          Self.number(r.objective, "%.6f"), Self.number(r.maxRelativeError, "%.4f"),
                          "\"\(r.note.replacingOccurrences(of: "\"", with: "'"))\""]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func cell(_ r: ScalingResult?) -> String {
        guard let r else { return "" }
        switch r.status {
        case "ok": return Harness.format(seconds: r.seconds)
        case "timeout": return "> \(Int(r.seconds.rounded())) s"
        default: return r.status
        }
    }

    func markdown() -> String {
        let methods = Self.unique(results.map(\.method))
        var out = "# Scaling benchmark\n\n\(environment). Produced by `\(command)`.\n\n"
        out += "Wall time of the whole process (read, fit, write JSON), REML. " +
            (lme4 ? "lme4 1.1-31 (`lmer`, `Rscript Benchmarks/lme4/lme4_reference.R … --no-ranef`) on the same files; ratio = lme4 time ÷ exact time.\n\n" : "lme4 was not run (no Rscript with lme4).\n\n")
        out += "| design | rows | levels | " + methods.joined(separator: " | ") + (lme4 ? " | lme4 ÷ exact |" : "") + "\n"
        out += "| --- | ---: | --- | " + methods.map { _ in "---:" }.joined(separator: " | ") + (lme4 ? " | ---: |" : "") + "\n"
        var keys: [(String, Int)] = []
        for r in results where !keys.contains(where: { $0 == (r.shape, r.rows) }) { keys.append((r.shape, r.rows)) }
        for (shape, rows) in keys {
            let row = results.filter { $0.shape == shape && $0.rows == rows }
            var line = "| \(shape) | \(rows) | \(row.first?.levels ?? "") | "
            line += methods.map { m in cell(row.first { $0.method == m }) }.joined(separator: " | ")
            if lme4 {
                let exact = row.first { $0.method == "exact" && $0.status == "ok" }
                let r = row.first { $0.method == "lme4" }
                if let exact, let r, r.status == "ok" {
                    line += String(format: " | %.1f× |", r.seconds / exact.seconds)
                } else if let exact, let r, r.status == "timeout" {
                    line += String(format: " | > %.0f× |", r.seconds / exact.seconds)
                } else { line += " | |" }
            }
            out += line + "\n"
        }
        out += "\nDetails: iterations (objective evaluations for exact), peak resident memory, and the largest relative error of a variance component against datagen's truth.\n\n"
        out += "| design | rows | method | status | time | peak MB | iterations | max rel. error of variances |\n"
        out += "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |\n"
        for r in results {
            out += "| \(r.shape) | \(r.rows) | \(r.method) | \(r.status)\(r.note.isEmpty ? "" : ": " + r.note) | \(cell(r)) | \(Int(r.peakMegabytes)) | \(r.iterations.map(String.init) ?? "") | \(Self.number(r.maxRelativeError, "%.3f")) |\n"
        }
        return out
    }

    func svg() -> String {
        let shapes = Self.unique(results.map(\.shape))
        let methods = Self.unique(results.map(\.method))
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
        let panelWidth = 460.0, panelHeight = 320.0, columns = 2
        let rowsOfPanels = (shapes.count + columns - 1) / columns
        let width = panelWidth * Double(columns), height = panelHeight * Double(rowsOfPanels) + 40
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        // Legend.
        for (index, method) in methods.enumerated() {
            let x = 20 + Double(index) * 110
            out += "<line x1=\"\(x)\" y1=\"20\" x2=\"\(x + 24)\" y2=\"20\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"2.5\"/>"
            out += "<text x=\"\(x + 30)\" y=\"24\">\(method)</text>\n"
        }
        let ok = results.filter { $0.status == "ok" && $0.seconds > 0 }
        let allRows = results.map { Double($0.rows) }
        let minX = log10(allRows.min() ?? 1e4), maxX = max(log10(allRows.max() ?? 1e7), minX + 1)
        let times = ok.map(\.seconds)
        let minY = floor(log10(times.min() ?? 0.01)), maxY = max(ceil(log10(times.max() ?? 100)), minY + 1)
        for (panel, shape) in shapes.enumerated() {
            let ox = Double(panel % columns) * panelWidth, oy = 40 + Double(panel / columns) * panelHeight
            let left = ox + 60, right = ox + panelWidth - 20, top = oy + 25, bottom = oy + panelHeight - 40
            func px(_ rows: Double) -> Double { left + (log10(rows) - minX) / (maxX - minX) * (right - left) }
            func py(_ seconds: Double) -> Double { bottom - (log10(seconds) - minY) / (maxY - minY) * (bottom - top) }
            out += "<text x=\"\(left)\" y=\"\(oy + 15)\" font-size=\"13\" font-weight=\"bold\">\(shape)</text>\n"
            out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(right - left)\" height=\"\(bottom - top)\" fill=\"none\" stroke=\"#999\"/>\n"
            for e in Int(minX)...Int(maxX) {
                let x = px(pow(10, Double(e)))
                out += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(bottom)\" stroke=\"#eee\"/><text x=\"\(x - 12)\" y=\"\(bottom + 14)\">1e\(e)</text>\n"
            }
            for e in Int(minY)...Int(maxY) {
                let y = py(pow(10, Double(e)))
                out += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(right)\" y2=\"\(y)\" stroke=\"#eee\"/><text x=\"\(left - 48)\" y=\"\(y + 4)\">\(e >= 0 ? String(Int(pow(10, Double(e)))) : String(format: "%g", pow(10, Double(e)))) s</text>\n"
            }
            out += "<text x=\"\((left + right) / 2 - 15)\" y=\"\(bottom + 30)\">rows</text>\n"
            for (index, method) in methods.enumerated() {
                let points = ok.filter { $0.shape == shape && $0.method == method }.sorted { $0.rows < $1.rows }
                guard !points.isEmpty else { continue }
                let color = colors[index % colors.count]
                let path = points.map { String(format: "%.1f,%.1f", px(Double($0.rows)), py($0.seconds)) }.joined(separator: " ")
                out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
                for point in points {
                    out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", px(Double(point.rows)), py(point.seconds), color)
                }
            }
        }
        return out + "</svg>\n"
    }
}
