import Foundation

/// lattice's `dotplot(ranef(m, condVar = TRUE))` for one grouping factor: one panel per
/// effect, a row per level, levels sorted by the first effect's conditional mode, each mode
/// with a bar of ±1.96 conditional SD and a line at zero.
///
/// With more than `maximumLevels` levels the dots would be unreadable: the plot then shows
/// the `extremeLevels` levels with the largest |mode| of the first effect, and under each
/// panel a histogram of every level's mode.
struct CaterpillarPlot {
    struct Effect {
        var name: String
        var values: [Double]
        var condSDs: [Double]
    }

    let factor: String
    let levels: [String]
    let effects: [Effect]
    var maximumLevels = 200
    var extremeLevels = 50

    /// The plot as an SVG document.
    var svg: String {
        let all = levels.count
        var shown = Array(0..<all)
        let summarized = all > maximumLevels
        if summarized {
            let first = effects[0].values
            shown = Array(shown.sorted { abs(first[$0]) > abs(first[$1]) }.prefix(extremeLevels))
        }
        let first = effects[0].values
        // Largest at the top, as lattice draws a sorted factor from the bottom up.
        shown.sort { first[$0] != first[$1] ? first[$0] > first[$1] : $0 < $1 }

        let rowHeight = max(6.0, min(24.0, 900.0 / Double(shown.count)))
        let showLabels = rowHeight >= 7
        let labelWidth = showLabels ? min(160.0, Double(shown.map { levels[$0].count }.max() ?? 4) * 6.5 + 12) : 20
        let panelWidth = 230.0, gap = 12.0
        let left = labelWidth + 10, top = 48.0
        let dotsHeight = rowHeight * Double(shown.count)
        let histogramHeight = summarized ? 150.0 : 0
        let title = summarized
            ? "Conditional modes of \(factor): the \(shown.count) most extreme of \(all) levels (±1.96 condSD)"
            : "Conditional modes of \(factor) (±1.96 condSD), \(all) levels"
        // Wide enough for the title (about 7.5 px a character at 13 px bold).
        let width = max(left + Double(effects.count) * (panelWidth + gap) + 10, Double(title.count) * 7.5 + 16)
        let height = top + dotsHeight + 40 + (summarized ? histogramHeight + 55 : 0)
        var svg = SVGDocument(width: width, height: height)
        svg.text(8, 20, title, size: 13, bold: true)

        for (e, effect) in effects.enumerated() {
            let lows = shown.map { effect.values[$0] - 1.96 * effect.condSDs[$0] }
            let highs = shown.map { effect.values[$0] + 1.96 * effect.condSDs[$0] }
            let range = min(lows.min() ?? 0, 0)...max(highs.max() ?? 0, 0)
            let panel = PlotPanel(left: left + Double(e) * (panelWidth + gap), top: top, width: panelWidth, height: dotsHeight,
                                  x: range, y: 0...Double(max(shown.count - 1, 1)))
            svg.text(panel.left + panelWidth / 2, top - 8, effect.name, size: 12, anchor: .middle, bold: true)
            panel.drawAxes(&svg, xTitle: nil, yTitle: nil, yTicks: false)
            svg.line(panel.x(0), top, panel.x(0), top + dotsHeight, stroke: "#888", dash: "4,3")
            for (row, level) in shown.enumerated() {
                let py = top + (Double(row) + 0.5) * rowHeight
                if e == 0 && showLabels {
                    svg.text(left - 6, py + min(rowHeight, 10) * 0.35, levels[level], size: min(rowHeight - 1, 10), anchor: .end)
                }
                svg.line(panel.x(lows[row]), py, panel.x(highs[row]), py, stroke: "#1f5fa8", width: 1.2)
                svg.circle(panel.x(effect.values[level]), py, radius: min(3, rowHeight / 3), fill: "#1f5fa8")
            }
            if summarized {
                drawHistogram(&svg, effect.values, left: panel.left, top: top + dotsHeight + 45,
                              width: panelWidth, height: histogramHeight, title: "all \(all) levels")
            }
        }
        return svg.text
    }

    /// A histogram of `values` (about √n bins, at most 40).
    private func drawHistogram(_ svg: inout SVGDocument, _ values: [Double], left: Double, top: Double,
                               width: Double, height: Double, title: String) {
        let low = values.min() ?? 0, high = values.max() ?? 0
        let bins = max(5, min(40, Int(Double(values.count).squareRoot())))
        let span = high > low ? high - low : 1
        var counts = [Int](repeating: 0, count: bins)
        for value in values { counts[min(bins - 1, Int((value - low) / span * Double(bins)))] += 1 }
        let panel = PlotPanel(left: left, top: top, width: width, height: height, x: low...(low + span), y: 0...Double(counts.max() ?? 1))
        panel.drawAxes(&svg, xTitle: nil, yTitle: nil, yTicks: true)
        svg.text(left + width / 2, top - 6, title, size: 11, anchor: .middle)
        for (b, count) in counts.enumerated() where count > 0 {
            let x0 = panel.x(low + Double(b) * span / Double(bins)), x1 = panel.x(low + Double(b + 1) * span / Double(bins))
            let y0 = panel.y(Double(count)), y1 = panel.y(0)
            svg.rectangle(x0, y0, x1 - x0, y1 - y0, fill: "#9bb7d9", stroke: "#1f5fa8")
        }
    }
}
