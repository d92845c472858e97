import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MixedModels

/// The diagnostic plots render as well-formed SVG with the expected marks.
@Suite("Diagnostic plots (SVG)")
struct PlotTests {
    /// Element names of an SVG document, counted (parsed as XML: a malformed file fails).
    static func elements(_ svg: String) throws -> [String: Int] {
        let document = try XMLDocument(xmlString: svg)
        var counts: [String: Int] = [:]
        func visit(_ node: XMLNode) {
            if node.kind == .element, let name = node.name { counts[name, default: 0] += 1 }
            for child in node.children ?? [] { visit(child) }
        }
        visit(document.rootElement()!)
        #expect(document.rootElement()?.name == "svg")
        return counts
    }

    @Test("sleepstudy: caterpillar, QQ of the modes, residuals vs fitted, QQ of the residuals")
    func sleepstudy() throws {
        let formula = try Formula.parse("Reaction ~ 1 + Days + (1 + Days | Subject)")
        let model = try LinearMixedModel(formula: formula, data: try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: formula))
        let fit = try model.fit()
        let files = Dictionary(uniqueKeysWithValues: try model.diagnosticPlots(fit).files.map { ($0.name, $0.svg) })
        #expect(Set(files.keys) == ["caterpillar_Subject.svg", "qq_ranef_Subject.svg", "residuals_vs_fitted.svg", "qq_residuals.svg"])
        // 18 levels × 2 effects: a dot and a ±1.96 condSD bar each, a label per level.
        let caterpillar = try Self.elements(files["caterpillar_Subject.svg"]!)
        #expect(caterpillar["circle"] == 36)
        #expect(files["caterpillar_Subject.svg"]!.contains(">337<"))
        #expect(try Self.elements(files["qq_ranef_Subject.svg"]!)["circle"] == 36)
        #expect(try Self.elements(files["residuals_vs_fitted.svg"]!)["circle"] == 180)
        #expect(try Self.elements(files["qq_residuals.svg"]!)["circle"] == 180)
        // Levels sorted by the intercept's mode, largest first (top): 337 above 309.
        let svg = files["caterpillar_Subject.svg"]!
        #expect(svg.range(of: ">337<")!.lowerBound < svg.range(of: ">309<")!.lowerBound)
    }

    @Test("many levels: the 50 most extreme levels and a histogram of all")
    func manyLevels() throws {
        let count = 1_000
        let values = (0..<count).map { sin(Double($0) * 0.37) * Double($0 % 17) }
        let plot = CaterpillarPlot(factor: "user", levels: (0..<count).map { "u\($0)" },
                                   effects: [.init(name: "(Intercept)", values: values, condSDs: Array(repeating: 0.5, count: count))])
        let svg = plot.svg
        let counts = try Self.elements(svg)
        #expect(counts["circle"] == 50)
        #expect(svg.contains("the 50 most extreme of 1000 levels"))
        #expect((counts["rect"] ?? 0) > 10)
        // The most extreme level is shown, a level with mode 0 is not.
        let extreme = values.indices.max { abs(values[$0]) < abs(values[$1]) }!
        #expect(svg.contains(">u\(extreme)<"))
        #expect(!svg.contains(">u0<"))
    }

    @Test("a large sample is binned, not drawn point by point")
    func binnedScatter() throws {
        let n = 50_000
        let fitted = (0..<n).map { Double($0 % 1000) }
        let residuals = (0..<n).map { sin(Double($0)) }
        let counts = try Self.elements(ScatterPlots.residualsVersusFitted(fitted: fitted, residuals: residuals))
        #expect((counts["circle"] ?? 0) == 0)
        #expect((counts["rect"] ?? 0) > 100 && (counts["rect"] ?? 0) < 92 * 64 + 10)
        let qq = try Self.elements(ScatterPlots.normalQQ(title: "qq", samples: [("r", residuals)]))
        #expect((qq["circle"] ?? 0) <= ScatterPlots.maximumPoints)
    }
}
