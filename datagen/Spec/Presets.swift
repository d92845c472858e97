import MixedModels

/// Built-in specs for the benchmark shapes. Level counts grow with the number of rows;
/// `--levels` overrides them.
enum Presets {
    struct Preset: Sendable {
        var name: String
        var summary: String
        var defaultRows: Int
        var make: @Sendable (Int) -> DataSpec
    }

    static let all: [Preset] = [
        Preset(
            name: "users-items",
            summary: """
                y ~ 1 + x + (1 + x | user) + (1 | item); users ≈ rows/10, items ≈ rows/100,
                both Zipf 0.8; β = (1, 0.5), σ_user = 0.5, σ_slope = 0.2 (correlation 0),
                σ_item = 0.3, σ = 1
                """,
            defaultRows: 200_000, make: usersItems),
        Preset(
            name: "users-items-intercepts",
            summary: """
                y ~ 1 + x1 + x2 + (1 | user) + (1 | item); users ≈ rows/10,
                items ≈ rows/100, both Zipf 0.8; β = (1, 0.5, -0.3), σ_user = 0.5,
                σ_item = 0.3, σ = 1 (the Adam scale benchmark)
                """,
            defaultRows: 10_000_000, make: usersItemsIntercepts),
        Preset(
            name: "instructors",
            summary: """
                y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service), like lme4's
                InstEval: s ≈ rows·2972/73421 students (uniform), d ≈ rows·1128/73421
                instructors (Zipf 0.5), 14 depts, service no/yes (0.58/0.42);
                β = (3.2, -0.07), σ_s = 0.32, σ_d = 0.52, σ_dept:service = 0.26, σ = 1.18
                """,
            defaultRows: 73_421, make: instructors),
        Preset(
            name: "nested",
            summary: """
                y ~ 1 + x + (1 | school) + (1 | class:school), i.e. (1 | school/class);
                schools ≈ rows/1000, classes ≈ rows/50 nested in schools, uniform;
                β = (1, 0.5), σ_school = 0.5, σ_class = 0.3, σ = 1
                """,
            defaultRows: 100_000, make: nested),
        Preset(
            name: "ml-32m",
            summary: """
                y ~ 1 + (1 | user) + (1 | item), the shape of MovieLens-32M: 32,000,204
                rows, users ≈ rows·200948/32000204, items ≈ rows·84432/32000204; Zipf
                0.5 (users) and 0.55 (items), so that the most active user has about
                0.1 % of the rows and the most rated item about 0.3 % (about as in the real
                data); β = 3.5, σ_user = 0.45, σ_item = 0.5, σ = 0.85 (magnitudes of
                0.5–5 star ratings, not fitted to them)
                """,
            defaultRows: 32_000_204, make: movieLens32M),
        Preset(
            name: "ml-1m",
            summary: """
                y ~ 1 + (1 | user) + (1 | item), the shape of MovieLens-1M: 1,000,209 rows,
                users ≈ rows·6040/1000209, items ≈ rows·3706/1000209; Zipf 0.35 for both
                (the most active user and the most rated item about 0.2–0.3 % of the
                rows); β = 3.5, σ_user = 0.45, σ_item = 0.5, σ = 0.85
                """,
            defaultRows: 1_000_209, make: movieLens1M),
    ]

    static func named(_ name: String) throws -> Preset {
        guard let preset = all.first(where: { $0.name == name }) else {
            throw InputError("unknown preset '\(name)'; the presets are \(all.map(\.name).joined(separator: ", "))")
        }
        return preset
    }

    /// `count` rounded, at least 2 (lme4 needs two levels per grouping factor).
    private static func levels(_ count: Double) -> Int { max(2, Int(count.rounded())) }

    private static func usersItems(rows: Int) -> DataSpec {
        DataSpec(
            rows: rows, seed: 1, intercept: 1.0,
            covariates: [.init(name: "x", coefficient: 0.5)],
            factors: [
                .init(name: "user", levels: levels(Double(rows) / 10), distribution: .zipf(exponent: 0.8)),
                .init(name: "item", levels: levels(Double(rows) / 100), distribution: .zipf(exponent: 0.8)),
            ],
            random: [
                .init(group: "user", effects: ["(Intercept)", "x"], scale: .sd([0.5, 0.2], correlation: nil)),
                .init(group: "item", effects: ["(Intercept)"], scale: .sd([0.3], correlation: nil)),
            ],
            sigma: 1.0)
    }

    private static func usersItemsIntercepts(rows: Int) -> DataSpec {
        DataSpec(
            rows: rows, seed: 1, intercept: 1.0,
            covariates: [.init(name: "x1", coefficient: 0.5), .init(name: "x2", coefficient: -0.3)],
            factors: [
                .init(name: "user", levels: levels(Double(rows) / 10), distribution: .zipf(exponent: 0.8)),
                .init(name: "item", levels: levels(Double(rows) / 100), distribution: .zipf(exponent: 0.8)),
            ],
            random: [
                .init(group: "user", effects: ["(Intercept)"], scale: .sd([0.5], correlation: nil)),
                .init(group: "item", effects: ["(Intercept)"], scale: .sd([0.3], correlation: nil)),
            ],
            sigma: 1.0)
    }

    private static func instructors(rows: Int) -> DataSpec {
        DataSpec(
            rows: rows, seed: 1, intercept: 3.2,
            covariates: [],
            factors: [
                .init(name: "s", levels: levels(Double(rows) * 2972 / 73421)),
                .init(name: "d", levels: levels(Double(rows) * 1128 / 73421), distribution: .zipf(exponent: 0.5)),
                .init(name: "dept", levels: 14, prefix: "dept"),
                .init(name: "service", levels: 2, labels: ["no", "yes"], distribution: .probabilities([0.58, 0.42]),
                      coefficients: ["yes": -0.07]),
            ],
            random: [
                .init(group: "s", effects: ["(Intercept)"], scale: .sd([0.32], correlation: nil)),
                .init(group: "d", effects: ["(Intercept)"], scale: .sd([0.52], correlation: nil)),
                .init(group: "dept:service", effects: ["(Intercept)"], scale: .sd([0.26], correlation: nil)),
            ],
            sigma: 1.18)
    }

    private static func nested(rows: Int) -> DataSpec {
        let schools = levels(Double(rows) / 1000)
        return DataSpec(
            rows: rows, seed: 1, intercept: 1.0,
            covariates: [.init(name: "x", coefficient: 0.5)],
            factors: [
                .init(name: "school", levels: schools),
                .init(name: "class", levels: max(schools, levels(Double(rows) / 50)), parent: "school"),
            ],
            random: [
                .init(group: "school", effects: ["(Intercept)"], scale: .sd([0.5], correlation: nil)),
                .init(group: "class:school", effects: ["(Intercept)"], scale: .sd([0.3], correlation: nil)),
            ],
            sigma: 1.0)
    }

    /// Ratings of users × items with Zipf frequencies (MovieLens-like).
    private static func movieLens(rows: Int, users: Double, items: Double, userExponent: Double, itemExponent: Double) -> DataSpec {
        DataSpec(
            rows: rows, seed: 1, intercept: 3.5,
            covariates: [],
            factors: [
                .init(name: "user", levels: levels(users), distribution: .zipf(exponent: userExponent)),
                .init(name: "item", levels: levels(items), distribution: .zipf(exponent: itemExponent)),
            ],
            random: [
                .init(group: "user", effects: ["(Intercept)"], scale: .sd([0.45], correlation: nil)),
                .init(group: "item", effects: ["(Intercept)"], scale: .sd([0.5], correlation: nil)),
            ],
            sigma: 0.85)
    }

    private static func movieLens32M(rows: Int) -> DataSpec {
        movieLens(rows: rows, users: Double(rows) * 200_948 / 32_000_204, items: Double(rows) * 84_432 / 32_000_204,
                  userExponent: 0.5, itemExponent: 0.55)
    }

    private static func movieLens1M(rows: Int) -> DataSpec {
        movieLens(rows: rows, users: Double(rows) * 6_040 / 1_000_209, items: Double(rows) * 3_706 / 1_000_209,
                  userExponent: 0.35, itemExponent: 0.35)
    }
}
