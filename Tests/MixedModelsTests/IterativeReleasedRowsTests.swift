import Foundation
import Testing
@testable import MixedModels

/// An iterative model built without keeping its frame's rows (the memory of a large fit,
/// issue 16): the same fit, and a clear error for what needs the rows.
@Suite struct IterativeReleasedRowsTests {
    @Test(arguments: [0, 1, 2])
    func sameFitWithoutTheRows(index: Int) throws {
        let (file, formula) = IterativeTests.cases[index]
        let parsed = try Formula.parse(formula)
        let table = try CSVReader.read(path: Fixtures.path(file), for: parsed)
        let kept = try IterativeMixedModel(formula: parsed, data: table)
        let released = try IterativeMixedModel(formula: parsed, data: table, keepingRows: false)
        #expect(kept.holdsRows && !released.holdsRows)
        #expect(released.frame.y.isEmpty && released.frame.dataRows.isEmpty && released.frame.X.values.isEmpty)
        #expect(released.frame.randomTerms.allSatisfy { $0.codes.isEmpty && $0.effects.values.isEmpty })
        #expect(released.frame.n == kept.frame.n && released.frame.X.columns == kept.frame.X.columns)
        var options = IterativeOptions()
        options.probes = 8
        for criterion in [Criterion.reml, .ml] {
            options.criterion = criterion
            let a = try kept.fit(options), b = try released.fit(options)
            // The same operations on the same numbers: equal to the last bit.
            #expect(a.theta == b.theta && a.fixedEffects == b.fixedEffects && a.sigma == b.sigma)
            #expect(a.objective == b.objective && a.scaledResidualQuantiles == b.scaledResidualQuantiles)
            #expect(a.randomEffects.map(\.value) == b.randomEffects.map(\.value))
            #expect(a.randomEffects.map(\.condSD) == b.randomEffects.map(\.condSD))
        }
        let fit = try released.fit(options)
        #expect(throws: InputError.self) { _ = try FittedValues(iterative: released, result: fit) }
        #expect(throws: InputError.self) {
            _ = try SavedModel(iterative: released, result: fit, data: table, dataPath: Fixtures.path(file))
        }
        _ = try FittedValues(iterative: kept, result: try kept.fit(options))
    }

    @Test func permutationInPlaceMatchesACopy() {
        let n = 1_000, columns = 3
        var generator = SplitMix64(seed: 3)
        var order = (0..<n).map { Int32($0) }
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
        let values = (0..<(n * columns)).map { _ in Double(generator.next() % 10_000) }
        var permuted = values
        MixedModelOperator.permute(&permuted, columns: columns, n: n, by: order)
        for c in 0..<columns { for i in 0..<n { #expect(permuted[i + c * n] == values[Int(order[i]) + c * n]) } }
    }
}
