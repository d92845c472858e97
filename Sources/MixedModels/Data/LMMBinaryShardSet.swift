/// A set of K shard files of one `.lmmbin` data set (`lmm convert --shards K`), named
/// `NAME.0-of-K.lmmbin` … `NAME.(K−1)-of-K.lmmbin` (``shardPath(_:index:count:)``).
///
/// Shard s holds its part of every chunk of the data (``LMMBinaryShardID/rows(ofChunkRows:)``),
/// its header the data's row count, rows per chunk, columns and levels and its place in the set.
/// On K ranks, rank r reads shard r: its part of each chunk, the rows it works on in every pass
/// (no chunk is sent between ranks); one process reads the K parts of each chunk one after
/// another, which is the chunk.
struct LMMBinaryShardSet {
    /// Where the given name is in the set.
    let index: Int
    /// Shards in the set.
    let count: Int
    /// The name before and after `s-of-K`.
    private let prefix: String
    private let suffix: String

    /// The set a path names: `….s-of-K.ext` or `….s-of-K` with 0 ≤ s < K; nil for any other name.
    init?(path: String) {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[slash...]
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return nil }
        // The `s-of-K` part is the last one, or the one before the extension.
        for position in [parts.count - 2, parts.count - 1] where position >= 1 {
            let field = parts[position].split(separator: "-", omittingEmptySubsequences: false)
            guard field.count == 3, field[1] == "of", let s = Self.number(field[0]), let k = Self.number(field[2]),
                  k >= 1, s < k else { continue }
            index = s
            count = k
            prefix = String(path[..<slash]) + parts[..<position].joined(separator: ".") + "."
            let rest = parts[(position + 1)...].joined(separator: ".")
            suffix = rest.isEmpty ? "" : "." + rest
            return
        }
        return nil
    }

    /// A decimal number without a leading zero (but 0), below 65,536 (the header's field).
    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), text.count <= 5,
              text == "0" || text.first != "0", let value = Int(text), value <= Int(UInt16.max) else { return nil }
        return value
    }

    /// The path of shard `s`.
    func path(of s: Int) -> String { prefix + "\(s)-of-\(count)" + suffix }

    /// The path of shard `index` of `count` of the output `path`: `OUT.lmmbin` →
    /// `OUT.index-of-count.lmmbin` (before the last extension, if the name has one).
    static func shardPath(_ path: String, index: Int, count: Int) -> String {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[slash...]
        if let dot = name.lastIndex(of: "."), dot != name.startIndex {
            return String(path[..<dot]) + ".\(index)-of-\(count)" + String(path[dot...])
        }
        return path + ".\(index)-of-\(count)"
    }

    /// Checks that `file`'s header says what its name says: shard `shard`, or a whole file when nil.
    static func check(_ file: LMMBinaryFile, isShard shard: LMMBinaryShardID?) throws {
        switch (shard, file.shard) {
        case (nil, nil):
            return
        case (nil, let actual?):
            throw InputError("this is shard \(actual.index) of a set of \(actual.count) (lmm convert --shards), under another "
                             + "name: the shards are found by the names lmm convert gave them (NAME.\(actual.index)-of-\(actual.count).lmmbin)",
                             file: file.name)
        case (let expected?, nil):
            throw InputError("named as shard \(expected.index) of \(expected.count), but it is a whole .lmmbin file, not a shard of a set",
                             file: file.name)
        case (let expected?, let actual?):
            guard expected == actual else {
                throw InputError("named as shard \(expected.index) of \(expected.count), but its header says shard \(actual.index) of "
                                 + "\(actual.count): not a shard of this set", file: file.name)
            }
        }
    }

    /// What a shard tells the others: enough to check that the shards make one set.
    struct Summary: Equatable {
        var index: Int
        var rowCount: Int
        var chunkCount: Int
        var rowsPerChunk: Int
        var fingerprint: UInt32

        init(_ file: LMMBinaryFile) {
            index = file.shard?.index ?? 0
            rowCount = file.rowCount
            chunkCount = file.chunkCount
            rowsPerChunk = file.rowsPerChunk
            fingerprint = file.levelFingerprint
        }

        init(_ values: ArraySlice<Double>) {
            let v = Array(values)
            index = Int(v[0])
            rowCount = Int(v[1])
            chunkCount = Int(v[2])
            rowsPerChunk = Int(v[3])
            fingerprint = UInt32(v[4])
        }

        /// As doubles (integers below 2⁵³: exact).
        var values: [Double] { [Double(index), Double(rowCount), Double(chunkCount), Double(rowsPerChunk), Double(fingerprint)] }
    }

    /// Collective: every rank's shard summary, by rank (one sum of 5·K doubles).
    static func exchange(_ own: Summary, count: Int, group: any ProcessGroup) -> [Summary] {
        var values = [Double](repeating: 0, count: 5 * count)
        values.replaceSubrange(5 * group.rank..<5 * group.rank + 5, with: own.values)
        group.allreduceSum(&values)
        return (0..<count).map { Summary(values[5 * $0..<5 * $0 + 5]) }
    }

    /// Checks that the shards, in order, are the K shards of one data set: the same columns,
    /// levels, rows per chunk and rows. Every process checks the same summaries, so all throw
    /// the same error.
    /// - Returns: the rows of the whole set.
    static func checkSet(_ shards: [Summary], names: [String]) throws -> Int {
        let first = shards[0]
        for s in shards.indices {
            guard shards[s].rowsPerChunk == first.rowsPerChunk else {
                throw InputError("\(shards[s].rowsPerChunk) rows per chunk, but \(names[0]) has \(first.rowsPerChunk): not a shard of the same set",
                                 file: names[s])
            }
            guard shards[s].fingerprint == first.fingerprint else {
                throw InputError("its columns or factor levels differ from those of \(names[0]): not a shard of the same set", file: names[s])
            }
            guard shards[s].rowCount == first.rowCount, shards[s].chunkCount == first.chunkCount, shards[s].index == s else {
                throw InputError("a part of \(shards[s].rowCount) rows in \(shards[s].chunkCount) chunks, but \(names[0]) is a part of "
                                 + "\(first.rowCount) rows in \(first.chunkCount) chunks: not a shard of the same set (convert the data "
                                 + "again with lmm convert --shards \(shards.count))", file: names[s])
            }
        }
        return first.rowCount
    }
}
