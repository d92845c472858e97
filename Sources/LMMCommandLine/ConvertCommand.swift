import ArgumentParser
import Foundation
import MixedModels

/// `lmm convert DATA.csv DATA.lmmbin`: a CSV file as the compact binary columnar file that
/// `lmm fit --method adam` streams.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a CSV file to an .lmmbin file (factors as integer codes, numbers as float64).",
        discussion: """
        The CSV file is read twice, streaming (types and levels, then values): memory grows with \
        the number of distinct levels, not of rows. A column is numeric when every non-missing \
        field is a number, as `lmm fit` reads it; --categorical makes a column a factor anyway \
        (subject ids such as 308, 309). Factor levels are stored in R's order. The output is \
        written to a temporary file and renamed when complete.

        Examples:
          lmm convert ratings.csv ratings.lmmbin --categorical user,item
          lmm fit ratings.lmmbin --formula 'y ~ 1 + x + (1 | user) + (1 | item)' --method adam
        """
    )

    @Argument(help: "CSV file with a header row.")
    var data: String

    @Argument(help: "The .lmmbin file to write.")
    var output: String

    @Option(help: ArgumentHelp("Columns to store as factors whatever their values look like (comma-separated).", valueName: "a,b"))
    var categorical: String?

    @Option(help: ArgumentHelp("Columns to keep, in this order (comma-separated; default: all).", valueName: "a,b"))
    var columns: String?

    @Option(help: "Rows per chunk, the unit the fitter reads.")
    var rowsPerChunk: Int = LMMBinaryFormat.defaultRowsPerChunk

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    func validate() throws {
        if rowsPerChunk < 1 { throw ValidationError("--rows-per-chunk must be at least 1") }
    }

    func run() throws {
        let start = Date()
        try reportingErrors {
            try OutputFiles.checkDistinct(inputs: [(data, "the CSV file")], outputs: [(output, "the output")])
            let list = { (text: String?) in text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } }
            let summary = try CSVConversion.convert(csv: data, to: output, select: list(columns),
                                                    categorical: Set(list(categorical) ?? []), rowsPerChunk: rowsPerChunk)
            if !quiet {
                let kinds = summary.columns.map { column in
                    column.kind == .factor ? "\(column.name) (factor, \(summary.levelCounts[column.name] ?? 0) levels)" : column.name
                }.joined(separator: ", ")
                FileHandle.standardError.write(Data(String(format: "lmm: wrote %d rows of %@ to %@ in %.2f s\n",
                    summary.rowCount, kinds, output, Date().timeIntervalSince(start)).utf8))
            }
        }
    }
}
