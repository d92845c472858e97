import Foundation

/// Residuals against fitted values, and normal quantile–quantile plots.
enum ScatterPlots {
    /// Points up to this many; above, a grid of counts (shaded by log count), which keeps the
    /// file small and the picture readable for millions of rows.
    static let maximumPoints = 5_000

    /// Residuals vs fitted values with a dashed line at zero.
    static func residualsVersusFitted(fitted: [Double], residuals: [Double]) -> String {
        var svg = SVGDocument(width: 560, height: 420)
        svg.text(8, 20, "Residuals vs fitted values (conditional), \(fitted.count) observations", size: 13, bold: true)
        let panel = PlotPanel(left: 70, top: 40, width: 460, height: 320,
                              x: (fitted.min() ?? 0)...(fitted.max() ?? 1), y: (residuals.min() ?? 0)...(residuals.max() ?? 1))
        panel.drawAxes(&svg, xTitle: "fitted", yTitle: "residual")
        scatter(&svg, panel, fitted, residuals)
        svg.line(panel.left, panel.y(0), panel.left + panel.width, panel.y(0), stroke: "#c0392b", width: 1.2, dash: "5,4")
        return svg.text
    }

    /// R's `ppoints(n)`: (i − a)/(n + 1 − 2a), a = 3/8 for n ≤ 10, else 1/2.
    static func plottingPositions(_ n: Int) -> [Double] {
        let a = n <= 10 ? 0.375 : 0.5
        return (1...max(n, 1)).map { (Double($0) - a) / (Double(n) + 1 - 2 * a) }
    }

    /// Normal QQ panels (one per sample) side by side, with R's `qqline` through the quartiles.
    static func normalQQ(title: String, samples: [(name: String, values: [Double])]) -> String {
        let panelWidth = 300.0, gap = 70.0
        var svg = SVGDocument(width: 70 + Double(samples.count) * (panelWidth + gap), height: 420)
        svg.text(8, 20, title, size: 13, bold: true)
        for (s, sample) in samples.enumerated() {
            let sorted = sample.values.sorted()
            let n = sorted.count
            guard n > 0 else { continue }
            // Every point, or evenly spaced order statistics (the tails kept) for large samples.
            let indices: [Int] = n <= maximumPoints ? Array(0..<n)
                : Array(Set((0..<maximumPoints).map { Int((Double($0) / Double(maximumPoints - 1) * Double(n - 1)).rounded()) })).sorted()
            let positions = plottingPositions(n)
            let theoretical = indices.map { Distributions.normalQuantile(positions[$0]) }
            let observed = indices.map { sorted[$0] }
            let panel = PlotPanel(left: 70 + Double(s) * (panelWidth + gap), top: 48, width: panelWidth, height: 310,
                                  x: (theoretical.first ?? -1)...(theoretical.last ?? 1), y: (observed.first ?? -1)...(observed.last ?? 1))
            panel.drawAxes(&svg, xTitle: "normal quantile", yTitle: s == 0 ? "sample quantile" : nil)
            svg.text(panel.left + panelWidth / 2, 42, sample.name, size: 12, anchor: .middle, bold: true)
            for (x, y) in zip(theoretical, observed) {
                svg.circle(panel.x(x), panel.y(y), radius: 2, fill: "#1f5fa8", opacity: 0.6)
            }
            // qqline: through the first and third quartiles (quantile type 7).
            let q1 = quantile(sorted, 0.25), q3 = quantile(sorted, 0.75)
            let z1 = Distributions.normalQuantile(0.25), z3 = Distributions.normalQuantile(0.75)
            let slope = (q3 - q1) / (z3 - z1), intercept = q1 - slope * z1
            let x0 = panel.xRange.lowerBound, x1 = panel.xRange.upperBound
            let clippedStart = max(x0, slope != 0 ? min((panel.yRange.lowerBound - intercept) / slope, (panel.yRange.upperBound - intercept) / slope) : x0)
            let clippedEnd = min(x1, slope != 0 ? max((panel.yRange.lowerBound - intercept) / slope, (panel.yRange.upperBound - intercept) / slope) : x1)
            if clippedEnd > clippedStart {
                svg.line(panel.x(clippedStart), panel.y(intercept + slope * clippedStart),
                         panel.x(clippedEnd), panel.y(intercept + slope * clippedEnd), stroke: "#c0392b", width: 1.2)
            }
        }
        return svg.text
    }

    /// R's `quantile(x, p, type = 7)` of sorted values.
    static func quantile(_ sorted: [Double], _ p: Double) -> Double {
        let h = Double(sorted.count - 1) * p
        let lower = Int(h.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (h - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    private static func scatter(_ svg: inout SVGDocument, _ panel: PlotPanel, _ x: [Double], _ y: [Double]) {
        if x.count <= maximumPoints {
            for (a, b) in zip(x, y) { svg.circle(panel.x(a), panel.y(b), radius: 1.8, fill: "#1f5fa8", opacity: 0.5) }
            return
        }
        let columns = 92, rows = 64
        var counts = [Int](repeating: 0, count: columns * rows)
        for (a, b) in zip(x, y) {
            let c = min(columns - 1, max(0, Int((panel.x(a) - panel.left) / panel.width * Double(columns))))
            let r = min(rows - 1, max(0, Int((panel.y(b) - panel.top) / panel.height * Double(rows))))
            counts[c + r * columns] += 1
        }
        let top = log(Double(counts.max() ?? 1) + 1)
        let cellWidth = panel.width / Double(columns), cellHeight = panel.height / Double(rows)
        for r in 0..<rows {
            for c in 0..<columns where counts[c + r * columns] > 0 {
                let shade = 0.15 + 0.85 * log(Double(counts[c + r * columns]) + 1) / top
                svg.rectangle(panel.left + Double(c) * cellWidth, panel.top + Double(r) * cellHeight, cellWidth, cellHeight,
                              fill: "#1f5fa8", opacity: shade)
            }
        }
        svg.text(panel.left + panel.width - 4, panel.top + 14, "\(x.count) points binned (shade: log count)", size: 10, anchor: .end)
    }
}
