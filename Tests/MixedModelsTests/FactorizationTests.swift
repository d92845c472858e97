import Foundation
import Testing
@testable import MixedModels

/// The two factorizations of Λ'Z'ZΛ + I — CHOLMOD on the whole matrix, and the blocked form
/// (first term level by level, dense Schur complement) — give the same objective, estimates,
/// BLUPs and inverse entries.
@Suite("Factorization engines agree")
struct FactorizationTests {
    /// Crossed synthetic data: users with random slopes, items with random slopes, stores.
    static func crossedData(rows n: Int, users: Int, items: Int, stores: Int, seed: UInt64) -> DataTable {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        func normal() -> Double { (-2 * log(max(next(), 1e-300))).squareRoot() * cos(2 * .pi * next()) }
        let userEffects = (0..<users).map { _ in (normal() * 0.5, normal() * 0.2) }
        let itemEffects = (0..<items).map { _ in (normal() * 0.3, normal() * 0.1) }
        let storeEffects = (0..<stores).map { _ in normal() * 0.4 }
        var y: [Double] = [], x: [Double] = [], u: [Int32] = [], i: [Int32] = [], s: [Int32] = []
        for _ in 0..<n {
            // Skewed user and item frequencies.
            let user = Int(Double(users) * pow(next(), 2)), item = Int(Double(items) * pow(next(), 1.5)), store = Int(Double(stores) * next())
            let xv = normal()
            y.append(1 + 0.5 * xv + userEffects[user].0 + userEffects[user].1 * xv + itemEffects[item].0
                     + itemEffects[item].1 * xv + storeEffects[store] + normal())
            x.append(xv); u.append(Int32(user)); i.append(Int32(item)); s.append(Int32(store))
        }
        func factor(_ codes: [Int32], _ count: Int, _ prefix: String) -> Factor {
            Factor(codes: codes, levels: (0..<count).map { prefix + String(format: "%05d", $0) })
        }
        return DataTable(source: "synthetic", columnNames: ["y", "x", "user", "item", "store"], columns: [
            "y": .numeric(y), "x": .numeric(x), "user": .categorical(factor(u, users, "u")),
            "item": .categorical(factor(i, items, "i")), "store": .categorical(factor(s, stores, "s")),
        ], rowCount: n)
    }

    static let formulas = [
        "y ~ 1 + x + (1 + x | user) + (1 | item)",
        "y ~ 1 + x + (1 + x | user) + (1 + x | item) + (1 | store)",
        "y ~ 1 + x + (1 | user) + (1 | item) + (1 | store)",
        "y ~ 1 + x + (1 + x || user) + (1 | item)",
    ]

    @Test("same objective, estimates and inverse", arguments: formulas)
    func enginesAgree(_ text: String) throws {
        let data = Self.crossedData(rows: 6000, users: 900, items: 300, stores: 6, seed: 7)
        let formula = try Formula.parse(text)
        let sparse = try LinearMixedModel(formula: formula, data: data, engine: .sparseCholesky)
        let blocked = try LinearMixedModel(formula: formula, data: data, engine: .blockedDense)
        #expect(blocked.pls.factorization is BlockedDenseFactorization)
        #expect(sparse.pls.factorization is SparseCholeskyFactorization)
        var theta = sparse.parameters.initialTheta
        for index in theta.indices { theta[index] = sparse.parameters.isDiagonal[index] ? 0.3 + 0.1 * Double(index) : 0.05 }
        for criterion in [Criterion.reml, .ml] {
            let a = try sparse.objective(at: theta, criterion: criterion)
            let b = try blocked.objective(at: theta, criterion: criterion)
            #expect(abs(a - b) <= 1e-8 * abs(a), "objective \(a) vs \(b)")
        }
        _ = try sparse.objective(at: theta)
        _ = try blocked.objective(at: theta)
        let betaA = sparse.pls.fixedEffects(), betaB = blocked.pls.fixedEffects()
        for (a, b) in zip(betaA, betaB) { #expect(abs(a - b) <= 1e-9 * max(1, abs(a))) }
        let uA = try sparse.pls.sphericalEffects(), uB = try blocked.pls.sphericalEffects()
        let scale = uA.map(abs).max()!
        for (a, b) in zip(uA, uB) { #expect(abs(a - b) <= 1e-9 * scale) }

        // Inverse entries on every stored block of Z'Z.
        let inverseA = try sparse.pls.invert(), inverseB = try blocked.pls.invert()
        let G = sparse.pls.products.G
        let colptr = G.columnPointers, rows = G.rowIndices
        var largest = 0.0, worst = 0.0
        for c in 0..<sparse.pls.q {
            for index in Int(colptr[c])..<Int(colptr[c + 1]) {
                let r = Int(rows[index])
                let a = inverseA.entry(r, c), b = inverseB.entry(r, c)
                largest = max(largest, abs(a))
                worst = max(worst, abs(a - b))
                #expect(abs(inverseB.entry(c, r) - b) <= 1e-15 * max(1, abs(b)))
            }
        }
        #expect(worst <= 1e-9 * largest, "largest inverse difference \(worst) (largest entry \(largest))")
    }

    /// The blocked engine's two inverse routes (issue 14): `dpotri` and A⁻¹ on Z'Z's pattern,
    /// against `dtrtri` and per-level Gram matrices, for the gradient, the conditional
    /// variances and every stored entry (cross entries computed on demand).
    @Test("triangular and full inverse routes agree to 1e-10", arguments: [
        "y ~ 1 + x + (1 + x | user) + (1 | item)",
        "y ~ 1 + x + (1 | user) + (1 | item) + (1 | store)",
        "y ~ 1 + x + (1 + x | user) + (1 | item) + (1 | store)",
    ])
    func inverseRoutesAgree(_ text: String) throws {
        let data = Self.crossedData(rows: 6000, users: 900, items: 300, stores: 6, seed: 5)
        let model = try LinearMixedModel(formula: try Formula.parse(text), data: data, engine: .blockedDense)
        let factorization = try #require(model.pls.factorization as? BlockedDenseFactorization)
        var theta = model.parameters.initialTheta
        for index in theta.indices { theta[index] = model.parameters.isDiagonal[index] ? 0.4 + 0.1 * Double(index) : -0.07 }
        struct Outcome { var objective: Double; var gradient: [Double]; var condVar: [Double]; var entries: [Double] }
        #expect(factorization.S.isSquare, "this size keeps S square by default")
        let square = factorization.nS
        func outcome(_ route: BlockedDenseFactorization.InverseRoute, _ criterion: Criterion, panels: Bool = false) throws -> Outcome {
            factorization.inverseRoute = route
            try factorization.usePanels(width: panels ? 64 : square)
            #expect(factorization.S.isSquare == !panels)
            let objective = try model.objective(at: theta, criterion: criterion)
            let gradient = try ProfiledGradient.compute(model.pls, criterion: criterion)
            let condVar = try ConditionalVariance.diagonal(pls: model.pls, sigmaSquared: 1.3)
            let inverse = try model.pls.invert()
            let G = model.pls.products.G
            var entries: [Double] = []
            for c in stride(from: 0, to: model.pls.q, by: 7) {
                for index in Int(G.columnPointers[c])..<Int(G.columnPointers[c + 1]) { entries.append(inverse.entry(Int(G.rowIndices[index]), c)) }
            }
            return Outcome(objective: objective, gradient: gradient, condVar: condVar, entries: entries)
        }
        for criterion in [Criterion.reml, .ml] {
            let full = try outcome(.fullInverse, criterion), triangular = try outcome(.triangular, criterion)
            let gradientScale = max(full.gradient.map(abs).max()!, 1)
            for (a, b) in zip(full.gradient, triangular.gradient) {
                #expect(abs(a - b) <= 1e-10 * gradientScale, "gradient \(full.gradient) vs \(triangular.gradient)")
            }
            for (a, b) in zip(full.condVar, triangular.condVar) { #expect(abs(a - b) <= 1e-10 * abs(a), "condVar \(a) vs \(b)") }
            let entryScale = full.entries.map(abs).max()!
            for (a, b) in zip(full.entries, triangular.entries) { #expect(abs(a - b) <= 1e-10 * entryScale, "entry \(a) vs \(b)") }
            // S in panels of 64 columns (the packed storage of large complements; 306 columns
            // here, so 5 panels): the same objective, gradient, variances and entries.
            let panelled = try outcome(.triangular, criterion, panels: true)
            #expect(abs(panelled.objective - full.objective) <= 1e-10 * abs(full.objective))
            for (a, b) in zip(full.gradient, panelled.gradient) {
                #expect(abs(a - b) <= 1e-10 * gradientScale, "gradient \(full.gradient) vs \(panelled.gradient)")
            }
            for (a, b) in zip(full.condVar, panelled.condVar) { #expect(abs(a - b) <= 1e-10 * abs(a), "condVar \(a) vs \(b)") }
            for (a, b) in zip(full.entries, panelled.entries) { #expect(abs(a - b) <= 1e-10 * entryScale, "entry \(a) vs \(b)") }
        }
    }

    @Test("REML fits agree")
    func fitsAgree() throws {
        let data = Self.crossedData(rows: 6000, users: 900, items: 300, stores: 6, seed: 11)
        let formula = try Formula.parse("y ~ 1 + x + (1 + x | user) + (1 | item) + (1 | store)")
        let a = try LinearMixedModel(formula: formula, data: data, engine: .sparseCholesky).fit()
        let b = try LinearMixedModel(formula: formula, data: data, engine: .blockedDense).fit()
        #expect(abs(a.objective - b.objective) <= 1e-6)
        for (x, y) in zip(a.theta, b.theta) { #expect(abs(x - y) <= 1e-4) }
        Compare.ranef(b.randomEffects, a.randomEffects, tolerance: 1e-4, sdTolerance: 1e-4)
    }
}
