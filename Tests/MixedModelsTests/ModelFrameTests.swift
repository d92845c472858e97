import Testing
@testable import MixedModels

/// The model frame's grouping factors: interactions label only the combinations that occur.
@Suite("model frame")
struct ModelFrameTests {
    /// The class of row r: a fifth of the `classes` occur, each in several rows when n > classes/5.
    static func classOf(_ r: Int, classes: Int) -> Int { ((r * 7919) % (classes / 5)) * 5 }

    /// `n` rows; class c belongs to school c % schools; y and x arbitrary.
    static func nested(rows n: Int, schools: Int, classes: Int) -> DataTable {
        var school = [Int32](repeating: 0, count: n), klass = school
        var y = [Double](repeating: 0, count: n), x = y
        for r in 0..<n {
            let c = classOf(r, classes: classes)
            klass[r] = Int32(c)
            school[r] = Int32(c % schools)
            x[r] = Double(r % 13) - 6
            y[r] = Double((r * 31) % 17) + 0.1 * x[r]
        }
        func labels(_ count: Int, _ prefix: String) -> [String] { (0..<count).map { prefix + String(1_000_000 + $0) } }
        return DataTable(source: "memory", columnNames: ["y", "x", "school", "class"], columns: [
            "y": .numeric(y), "x": .numeric(x),
            "school": .categorical(Factor(codes: school, levels: labels(schools, "s"))),
            "class": .categorical(Factor(codes: klass, levels: labels(classes, "c"))),
        ], rowCount: n)
    }

    /// The class:school term of `(1 | school/class)` on `nested(rows:schools:classes:)`: its
    /// level count, level order and every 97th row's label.
    static func checkInteraction(rows: Int, schools: Int, classes: Int) throws {
        let data = nested(rows: rows, schools: schools, classes: classes)
        let frame = try ModelFrame(formula: try Formula.parse("y ~ 1 + x + (1 | school/class)"), data: data)
        let term = try #require(frame.randomTerms.first { $0.groupingName == "class:school" })
        #expect(term.levelCount == classes / 5)
        #expect(term.levels == term.levels.sorted())
        for r in stride(from: 0, to: rows, by: 97) {
            let c = classOf(r, classes: classes)
            #expect(term.levels[Int(term.codes[r])] == "c\(1_000_000 + c):s\(1_000_000 + c % schools)")
        }
    }

    @Test("class:school with 10⁵ × 10⁵ possible combinations keeps the 2·10⁴ that occur, in level order")
    func sparseInteraction() throws {
        // 100k classes × 100k schools would be 10¹⁰ labels; only 20k classes occur.
        try Self.checkInteraction(rows: 60_000, schools: 100_000, classes: 100_000)
    }

    @Test("the dense path (few combinations) gives the interaction factor in the same form")
    func denseInteraction() throws {
        try Self.checkInteraction(rows: 5_000, schools: 40, classes: 400)
    }
}
