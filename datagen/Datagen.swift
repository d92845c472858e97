import ArgumentParser
import Foundation
import MixedModels

/// `datagen`: linear mixed model data with known truth, streamed to CSV or `.lmmbin`.
@main
struct Datagen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datagen",
        abstract: "Generate linear mixed model data with known truth (CSV or .lmmbin) and its truth JSON.",
        discussion: """
            Presets (level counts grow with --rows; override them with --levels):
            \(Presets.all.map { "\n\($0.name), default \($0.defaultRows) rows:\n" + $0.summary.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") }.joined(separator: "\n"))

            Spec files (--spec) describe any model: "rows", "seed", "response",
            "intercept", "sigma"; "covariates" [{name, coefficient, mean, sd}];
            "factors" [{name, levels or labels, prefix, distribution: uniform | zipf
            (with exponent) | probabilities, parent (nesting), coefficients (fixed
            effects by level)}]; "random" [{group ("g" or "a:b"), effects
            (["(Intercept)", "x"]), sd and correlation, or covariance}].
            --print-spec prints a preset's spec as a starting point.

            Rows are streamed: memory grows with the numbers of levels, not of rows.
            The same arguments give the same bytes. Labels are a prefix and a
            zero-padded number (u00042), which R sorts numerically; Zipf ranks go
            to levels in random order. A level may occur in no row (lme4 drops it):
            the truth's ngroups and ranef count only levels that occur.

            Examples:
              datagen --preset users-items --rows 200000 --seed 1 \\
                      --out data.csv --truth truth.json
              datagen --preset users-items --rows 10000000 --out data.lmmbin
              datagen --preset users-items --rows 20000 --levels user=2000,item=200 \\
                      --out small.csv
              datagen --spec model.json --out data.csv --truth truth.json
            """
    )

    @Option(help: "A built-in spec: \(Presets.all.map(\.name).joined(separator: ", ")).")
    var preset: String?

    @Option(help: "A JSON spec file (see --print-spec for the format).")
    var spec: String?

    @Option(help: "Number of rows (default: the preset's, or the spec's \"rows\").")
    var rows: Int?

    @Option(help: "Random seed, 0 ... 2^63-1 (default: the spec's, or 1).")
    var seed: Int64?

    @Option(help: "Level counts by factor, as user=20000,item=2000.")
    var levels: String?

    @Option(help: "The data file to write.")
    var out: String?

    @Option(help: "csv or lmmbin (default: from the extension of --out, else csv).")
    var format: String?

    @Option(help: "Where to write the truth JSON.")
    var truth: String?

    @Option(help: "Rows per chunk of an .lmmbin file (default 65536).")
    var rowsPerChunk: Int?

    @Flag(help: "Leave the realized random effects out of the truth JSON (they are large for millions of levels).")
    var noRanef = false

    @Flag(help: "Print the resolved spec as JSON and exit.")
    var printSpec = false

    @Flag(help: "Print no timing summary.")
    var quiet = false

    func run() throws {
        let (spec, source, origin) = try resolveSpec()
        if printSpec {
            print(try spec.json.serialized(), terminator: "")
            return
        }
        guard let out else { throw InputError("missing --out FILE, the data file to write") }
        let kind = try outputFormat(out)
        if let truth, truth == out { throw InputError("--truth and --out name the same file") }

        let start = DispatchTime.now()
        let plan = try GenerationPlan(spec: spec, source: source)
        let sink: RowSink = kind == "lmmbin" ? try BinarySink(path: out, plan: plan) : try CSVSink(path: out, plan: plan)
        let truthFile = try truth.map { try OutputFile(path: $0) }
        var generator = RowGenerator(plan: plan)
        let block = generator.makeBlock()
        while generator.next(into: block) { try sink.write(block) }
        if let truthFile {
            try truthFile.append(TruthDocument.text(plan: plan, origin: origin, ranef: !noRanef))
        }
        try sink.commit()
        try truthFile?.commit()

        if !quiet {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let rate = Double(spec.rows) / max(seconds, 1e-9)
            FileHandle.standardError.write(Data(String(format: "datagen: %d rows to %@ in %.2f s (%.2fM rows/s)\n",
                                                       spec.rows, out, seconds, rate / 1e6).utf8))
        }
    }

    /// The spec from the preset or file, with the command-line overrides, validated.
    private func resolveSpec() throws -> (DataSpec, String, [(String, JSONValue)]) {
        var spec: DataSpec
        let source: String
        var origin: [(String, JSONValue)] = []
        switch (preset, self.spec) {
        case (let name?, nil):
            let preset = try Presets.named(name)
            spec = preset.make(rows ?? preset.defaultRows)
            source = "preset \(name)"
            origin.append(("preset", .string(name)))
        case (nil, let path?):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw InputError("cannot read the spec file", file: path)
            }
            source = URL(fileURLWithPath: path).lastPathComponent
            spec = try DataSpec.parse(data, source: source)
            origin.append(("specFile", .string(source)))
        case (nil, nil):
            throw InputError("give --preset NAME or --spec FILE; the presets are \(Presets.all.map(\.name).joined(separator: ", "))")
        case (_?, _?):
            throw InputError("give either --preset or --spec, not both")
        }
        if let rows { spec.rows = rows }
        if let seed {
            guard seed >= 0 else { throw InputError("--seed must not be negative, got \(seed)") }
            spec.seed = UInt64(seed)
        }
        if let rowsPerChunk { spec.rowsPerChunk = rowsPerChunk }
        if let levels { try applyLevels(levels, to: &spec) }
        try spec.validate(source: source)
        origin.append(("seed", .integer(Int(spec.seed))))
        return (spec, source, origin)
    }

    /// Applies `--levels name=count,…`.
    private func applyLevels(_ text: String, to spec: inout DataSpec) throws {
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, let count = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
                throw InputError("--levels: expected name=count, got '\(item)'")
            }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard let f = spec.factors.firstIndex(where: { $0.name == name }) else {
                throw InputError("--levels: no factor '\(name)'; the factors are \(spec.factors.map(\.name).joined(separator: ", "))")
            }
            guard spec.factors[f].labels == nil else {
                throw InputError("--levels: factor '\(name)' has explicit labels; its level count cannot change")
            }
            spec.factors[f].levels = count
        }
    }

    private func outputFormat(_ out: String) throws -> String {
        if let format {
            guard ["csv", "lmmbin"].contains(format) else {
                throw InputError("unknown --format '\(format)'; expected csv or lmmbin")
            }
            return format
        }
        return out.hasSuffix(".lmmbin") ? "lmmbin" : "csv"
    }
}
