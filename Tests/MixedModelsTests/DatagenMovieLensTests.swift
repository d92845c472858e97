import Foundation
import Testing
@testable import MixedModels

/// datagen's MovieLens shapes (issue 16's ml-32m benchmark): level counts in the proportions of
/// the real data at any size, Zipf frequencies with the largest level's share as documented.
@Suite struct DatagenMovieLensTests {
    struct Truth: Decodable {
        var formula: String
        var nobs: Int
        var ngroups: [String: Int]
        var levels: [String: Int]
    }

    struct Shape: Sendable {
        var preset: String
        var usersPerRow: Double
        var itemsPerRow: Double
        var userExponent: Double
        var itemExponent: Double
    }

    static let shapes: [Shape] = [
        Shape(preset: "ml-32m", usersPerRow: 200_948.0 / 32_000_204, itemsPerRow: 84_432.0 / 32_000_204,
              userExponent: 0.5, itemExponent: 0.55),
        Shape(preset: "ml-1m", usersPerRow: 6_040.0 / 1_000_209, itemsPerRow: 3_706.0 / 1_000_209,
              userExponent: 0.35, itemExponent: 0.35),
    ]

    /// 200,000 rows of each preset: users and items scaled from the real counts, the formula
    /// the benchmark fits, and the most frequent user and item near their designed share.
    @Test(arguments: shapes)
    func shape(_ shape: Shape) throws {
        let (preset, usersPerRow, itemsPerRow) = (shape.preset, shape.usersPerRow, shape.itemsPerRow)
        let (userExponent, itemExponent) = (shape.userExponent, shape.itemExponent)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let rows = 200_000
        let csv = directory.appendingPathComponent("ml.csv").path, truthPath = directory.appendingPathComponent("truth.json").path
        let made = try CommandRunner.run("datagen", ["--preset", preset, "--rows", "\(rows)", "--out", csv, "--truth", truthPath,
                                                     "--no-ranef", "--quiet"])
        #expect(made.status == 0, "\(made.stderr)")
        let truth = try JSONDecoder().decode(Truth.self, from: Data(contentsOf: URL(fileURLWithPath: truthPath)))
        #expect(truth.formula == "y ~ 1 + (1 | user) + (1 | item)")
        #expect(truth.nobs == rows)
        #expect(truth.levels["user"] == Int((Double(rows) * usersPerRow).rounded()))
        #expect(truth.levels["item"] == Int((Double(rows) * itemsPerRow).rounded()))

        var users: [Substring: Int] = [:], items: [Substring: Int] = [:]
        for line in try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",")
            users[fields[1], default: 0] += 1
            items[fields[2], default: 0] += 1
        }
        // Zipf(s) over N levels: the first has 1/Σₖ k^(−s) of the rows.
        for (counts, levels, exponent) in [(users, truth.levels["user"]!, userExponent), (items, truth.levels["item"]!, itemExponent)] {
            let share = 1 / (1...levels).reduce(0.0) { $0 + pow(Double($1), -exponent) }
            let observed = Double(counts.values.max()!) / Double(rows)
            #expect(abs(observed - share) < 0.15 * share, "\(preset): largest share \(observed), Zipf \(share)")
        }
    }
}
