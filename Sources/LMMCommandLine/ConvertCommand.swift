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

        With --shards K the output is K files, one per rank of an MPI job: OUT.lmmbin becomes \
        OUT.0-of-K.lmmbin … OUT.(K-1)-of-K.lmmbin, shard s holding its part of every chunk (rows \
        n·s/K to n·(s+1)/K of a chunk of n rows, rounded down; each a valid .lmmbin shard with \
        the same columns and levels); they appear together when all are complete. The input may then also be an .lmmbin file (or a shard set), split as it is.

        Examples:
          lmm convert ratings.csv ratings.lmmbin --categorical user,item
          lmm fit ratings.lmmbin --formula 'y ~ 1 + x + (1 | user) + (1 | item)' --method adam
          lmm convert ratings.csv ratings.lmmbin --categorical user,item --shards 4
          mpirun -np 4 lmm-mpi fit ratings.0-of-4.lmmbin -f 'y ~ 1 + x + (1 | user) + (1 | item)' --method adam
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
    var rowsPerChunk: Int?

    @Option(help: ArgumentHelp("Write K shard files (OUT.0-of-K.lmmbin …), one per rank of an MPI job (lmm-mpi).", valueName: "K"))
    var shards: Int?

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    func validate() throws {
        if let rowsPerChunk, rowsPerChunk < 1 { throw ValidationError("--rows-per-chunk must be at least 1") }
        if let shards, !(1...LMMBinaryShardID.maximumCount).contains(shards) { throw ValidationError("--shards must be between 1 and \(LMMBinaryShardID.maximumCount)") }
    }

    func run() throws {
        let start = Date()
        try reportingErrors {
            if let shards { return try convertToShards(shards, start: start) }
            try OutputFiles.checkDistinct(inputs: [(data, "the CSV file")], outputs: [(output, "the output")])
            let summary = try convertCSV(to: output)
            if !quiet { report(summary, to: output, start: start) }
        }
    }

    private func convertCSV(to path: String) throws -> CSVConversion.Summary {
        let list = { (text: String?) in text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } }
        return try CSVConversion.convert(csv: data, to: path, select: list(columns), categorical: Set(list(categorical) ?? []),
                                         rowsPerChunk: rowsPerChunk ?? LMMBinaryFormat.defaultRowsPerChunk)
    }

    private func report(_ summary: CSVConversion.Summary, to path: String, start: Date) {
        let kinds = summary.columns.map { column in
            column.kind == .factor ? "\(column.name) (factor, \(summary.levelCounts[column.name] ?? 0) levels)" : column.name
        }.joined(separator: ", ")
        FileHandle.standardError.write(Data(String(format: "lmm: wrote %d rows of %@ to %@ in %.2f s\n",
            summary.rowCount, kinds, path, Date().timeIntervalSince(start)).utf8))
    }

    /// `--shards K`: the CSV file converted to a temporary `.lmmbin` file beside the output
    /// (or an `.lmmbin` input as it is), then split into the K shards.
    private func convertToShards(_ count: Int, start: Date) throws {
        let paths = (0..<count).map { LMMBinarySharding.shardPath(output, index: $0, count: count) }
        try OutputFiles.checkDistinct(inputs: [(data, "the input file")], outputs: paths.map { ($0, "a shard") })
        if LMMBinaryFormat.isBinaryFile(path: data) {
            if columns != nil || categorical != nil || rowsPerChunk != nil {
                throw ValidationError("--columns, --categorical and --rows-per-chunk apply to a CSV input; an .lmmbin file is split as it is")
            }
            let reader = try LMMBinaryReader(path: data)
            try LMMBinarySharding.split(reader, to: output, shards: count)
            if !quiet { reportShards(rows: reader.rowCount, paths: paths, start: start) }
            return
        }
        let directory = URL(fileURLWithPath: output).deletingLastPathComponent().path
        let temporary = directory + "/.\(URL(fileURLWithPath: output).lastPathComponent).whole-\(getpid())-\(UUID().uuidString.prefix(8))"
        SignalCleanup.register(temporary)
        defer {
            unlink(temporary)
            SignalCleanup.unregister(temporary)
        }
        let summary = try convertCSV(to: temporary)
        try LMMBinarySharding.split(try LMMBinaryReader(path: temporary), to: output, shards: count)
        if !quiet { reportShards(rows: summary.rowCount, paths: paths, start: start) }
    }

    private func reportShards(rows: Int, paths: [String], start: Date) {
        FileHandle.standardError.write(Data(String(format: "lmm: wrote %d rows in %d shards to %@ … %@ in %.2f s\n",
            rows, paths.count, paths.first!, paths.last!, Date().timeIntervalSince(start)).utf8))
    }
}
