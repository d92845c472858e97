import Foundation

/// The data shapes and sizes the scaling suite measures.
struct ScalingCase {
    /// Short name of the design: `crossed`, `crossed-intercepts`, `nested`, `single`.
    var shape: String
    var rows: Int
    /// How datagen makes it: a preset, or a spec written into the output directory.
    var datagenArguments: [String]
    var formula: String
    /// Level counts, for the table.
    var levels: String
    /// Largest dense block the exact engine would need (0 when the design has none); beyond
    /// ~15k it does not fit in memory and the exact method is skipped.
    var denseBlock: Int

    /// - Parameters:
    ///   - sizes: the row counts (nil: the default grid, or the quick one).
    ///   - movieLens: add the ml-32m shape, at 32M rows (or at `sizes`).
    static func grid(quick: Bool, rows sizes: [Int]? = nil, movieLens: Bool = false) -> [ScalingCase] {
        let rows = sizes ?? (quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000, 10_000_000])
        var cases: [ScalingCase] = []
        for n in rows {
            // users-items with a random slope: users ≈ n/10, items ≈ n/100 (datagen's preset).
            cases.append(ScalingCase(shape: "crossed", rows: n, datagenArguments: ["--preset", "users-items"],
                                     formula: "y ~ 1 + x + (1 + x | user) + (1 | item)",
                                     levels: "user \(n / 10), item \(n / 100)", denseBlock: n / 100))
            cases.append(ScalingCase(shape: "crossed-intercepts", rows: n, datagenArguments: ["--preset", "users-items-intercepts"],
                                     formula: "y ~ 1 + x1 + x2 + (1 | user) + (1 | item)",
                                     levels: "user \(n / 10), item \(n / 100)", denseBlock: n / 100))
            cases.append(ScalingCase(shape: "nested", rows: n, datagenArguments: ["--preset", "nested"],
                                     formula: "y ~ 1 + x + (1 | school/class)",
                                     levels: "school \(max(n / 1000, 2)), class \(n / 50)", denseBlock: 0))
            cases.append(ScalingCase(shape: "single", rows: n, datagenArguments: ["--spec", "single.json"],
                                     formula: "y ~ 1 + x + (1 + x | g)", levels: "g \(n / 20)", denseBlock: 0))
        }
        if movieLens {
            for n in sizes ?? [32_000_204] {
                let users = max(2, Int((Double(n) * 200_948 / 32_000_204).rounded()))
                let items = max(2, Int((Double(n) * 84_432 / 32_000_204).rounded()))
                cases.append(ScalingCase(shape: "ml-32m", rows: n, datagenArguments: ["--preset", "ml-32m"],
                                         formula: "y ~ 1 + (1 | user) + (1 | item)",
                                         levels: "user \(users), item \(items)", denseBlock: min(users, items)))
            }
        }
        return cases
    }

    /// A one-factor spec with a random slope: g ≈ rows/20 levels, Zipf 0.8.
    static func singleSpec(rows: Int) -> String {
        """
        {"rows": \(rows), "seed": 7, "response": "y", "intercept": 1,
         "covariates": [{"name": "x", "coefficient": 0.5, "mean": 0, "sd": 1}],
         "factors": [{"name": "g", "levels": \(max(rows / 20, 3)), "distribution": "zipf", "exponent": 0.8}],
         "random": [{"group": "g", "effects": ["(Intercept)", "x"], "sd": [0.6, 0.25], "correlation": [[1, 0.3], [0.3, 1]]}],
         "sigma": 1}
        """
    }
}

/// One measured cell of the table.
struct ScalingResult {
    var shape: String
    var rows: Int
    var levels: String
    var method: String
    /// ok, failed, timeout (> cap), skipped.
    var status: String
    var seconds: Double
    var peakMegabytes: Double
    var iterations: Int?
    var objective: Double?
    /// Largest relative error of a variance component (σ² included) against datagen's truth.
    var maxRelativeError: Double?
    var note: String
}
