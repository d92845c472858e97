import Foundation

/// A minimal SVG writer: elements appended as text, attribute values escaped, numbers with a
/// fixed precision so that files are small and reproducible.
struct SVGDocument {
    let width: Double
    let height: Double
    private(set) var body: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    static func number(_ value: Double) -> String {
        let text = String(format: "%.2f", value)
        if text.hasSuffix(".00") { return String(text.dropLast(3)) }
        if text.hasSuffix("0") { return String(text.dropLast()) }
        return text
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#000", width: Double = 1, dash: String? = nil) {
        body.append("<line x1=\"\(Self.number(x1))\" y1=\"\(Self.number(y1))\" x2=\"\(Self.number(x2))\" y2=\"\(Self.number(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.number(width))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func circle(_ x: Double, _ y: Double, radius: Double, fill: String, opacity: Double = 1) {
        body.append("<circle cx=\"\(Self.number(x))\" cy=\"\(Self.number(y))\" r=\"\(Self.number(radius))\" fill=\"\(fill)\"\(opacity < 1 ? " fill-opacity=\"\(Self.number(opacity))\"" : "")/>")
    }

    mutating func rectangle(_ x: Double, _ y: Double, _ width: Double, _ height: Double, fill: String, stroke: String? = nil, opacity: Double = 1) {
        body.append("<rect x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\" fill=\"\(fill)\"\(stroke.map { " stroke=\"\($0)\"" } ?? "")\(opacity < 1 ? " fill-opacity=\"\(Self.number(opacity))\"" : "")/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 1.5) {
        let list = points.map { "\(Self.number($0.0)),\(Self.number($0.1))" }.joined(separator: " ")
        body.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(Self.number(width))\"/>")
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(_ x: Double, _ y: Double, _ content: String, size: Double = 11, anchor: Anchor = .start,
                       rotate: Double? = nil, bold: Bool = false) {
        let transform = rotate.map { " transform=\"rotate(\(Self.number($0)) \(Self.number(x)) \(Self.number(y)))\"" } ?? ""
        body.append("<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" font-size=\"\(Self.number(size))\" text-anchor=\"\(anchor.rawValue)\"\(bold ? " font-weight=\"bold\"" : "")\(transform)>\(Self.escape(content))</text>")
    }

    /// The document: an `<svg>` root with a white background, sans-serif text.
    var text: String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\" viewBox=\"0 0 \(Self.number(width)) \(Self.number(height))\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\" fill=\"#fff\"/>\n"
        for element in body { out += element + "\n" }
        out += "</svg>\n"
        return out
    }
}

/// A rectangular plotting area with data ranges, axes and tick labels.
struct PlotPanel {
    /// Pixel frame of the data area.
    let left: Double, top: Double, width: Double, height: Double
    let xRange: ClosedRange<Double>
    let yRange: ClosedRange<Double>

    init(left: Double, top: Double, width: Double, height: Double, x: ClosedRange<Double>, y: ClosedRange<Double>) {
        self.left = left
        self.top = top
        self.width = width
        self.height = height
        xRange = Self.padded(x)
        yRange = Self.padded(y)
    }

    /// A range widened by 4 % on each side (R's default), or by 1 when it is a single point.
    static func padded(_ range: ClosedRange<Double>) -> ClosedRange<Double> {
        let span = range.upperBound - range.lowerBound
        if !(span > 0) { return (range.lowerBound - 1)...(range.upperBound + 1) }
        return (range.lowerBound - 0.04 * span)...(range.upperBound + 0.04 * span)
    }

    func x(_ value: Double) -> Double {
        left + (value - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * width
    }

    func y(_ value: Double) -> Double {
        top + height - (value - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * height
    }

    /// "Pretty" tick positions (1, 2, 5 × 10ᵏ) covering a range with about `count` ticks.
    static func ticks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / Double(count)
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        // The 1-2-5 step whose tick count is closest to `count` (as R's `pretty`).
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.min { abs(span / $0 - Double(count)) < abs(span / $1 - Double(count)) }!
        var ticks: [Double] = []
        var value = (range.lowerBound / step).rounded(.up) * step
        while value <= range.upperBound + 1e-9 * step {
            ticks.append(abs(value) < 1e-12 * step ? 0 : value)
            value += step
        }
        return ticks
    }

    static func label(_ value: Double) -> String {
        let text = String(format: "%g", value)
        return text
    }

    /// Frame, ticks with labels on the bottom (x) and left (y, unless `yTicks` is false), axis titles.
    func drawAxes(_ svg: inout SVGDocument, xTitle: String?, yTitle: String?, yTicks: Bool = true) {
        svg.rectangle(left, top, width, height, fill: "none", stroke: "#444")
        for tick in Self.ticks(xRange) {
            let px = x(tick)
            svg.line(px, top + height, px, top + height + 4, stroke: "#444")
            svg.line(px, top, px, top + height, stroke: "#eee", width: 0.7)
            svg.text(px, top + height + 15, Self.label(tick), size: 10, anchor: .middle)
        }
        if yTicks {
            for tick in Self.ticks(yRange) {
                let py = y(tick)
                svg.line(left - 4, py, left, py, stroke: "#444")
                svg.line(left, py, left + width, py, stroke: "#eee", width: 0.7)
                svg.text(left - 6, py + 3.5, Self.label(tick), size: 10, anchor: .end)
            }
        }
        if let xTitle { svg.text(left + width / 2, top + height + 32, xTitle, size: 12, anchor: .middle) }
        if let yTitle { svg.text(left - 42, top + height / 2, yTitle, size: 12, anchor: .middle, rotate: -90) }
    }
}
