/// The grouping factor of a random term in a streamed file: each row's level as a slot index,
/// slots numbered in lme4's level order.
///
/// For one factor column the slots are all of the file's levels in R's order — a level that no
/// complete row uses keeps an empty slot (no rows, left out of every output), so that for the
/// usual file, whose labels are already in R's order, a row's slot is its code and a chunk's
/// codes are used as they are. For an interaction `g1:g2` the slots are the combinations that
/// occur, in R's order of interaction levels (the first factor varying slowest).
struct GroupingFactor: Sendable {
    enum Map: Sendable {
        /// Slot of a file code; nil when it is the code itself.
        case column(Int, slotOfCode: [Int32]?)
        /// The combination's key, Σ rank(code of column c) · radix[c], looked up in `slotOfKey`.
        case interaction(columns: [Int], rankOfCode: [[Int32]], radix: [Int64], slotOfKey: [Int64: Int32])
    }

    let map: Map
    /// Label of every slot.
    let labels: [String]
    /// File columns of the factor (one, or the interaction's).
    let columns: [Int]
    /// Per column, the R-order rank of each slot's level (nil for one column: the rank is the slot).
    let ranks: [[Int32]]?

    var slotCount: Int { labels.count }

    /// A single factor column whose labels are `fileLabels` (in code order).
    init(column: Int, fileLabels: [String]) {
        columns = [column]
        ranks = nil
        if LMMBinaryReader.isInROrder(fileLabels) {
            map = .column(column, slotOfCode: nil)
            labels = fileLabels
            return
        }
        let order = LevelOrder.sortedIndices(fileLabels)
        var slot = [Int32](repeating: 0, count: order.count)
        for (position, code) in order.enumerated() { slot[code] = Int32(position) }
        map = .column(column, slotOfCode: slot)
        labels = order.map { fileLabels[$0] }
    }

    /// An interaction of factor columns, with the keys of the combinations that occur.
    init(columns: [Int], fileLabels: [[String]], usedKeys: Set<Int64>) {
        var ranks: [[Int32]] = []
        var sortedLabels: [[String]] = []
        for labels in fileLabels {
            let order = LMMBinaryReader.isInROrder(labels) ? Array(labels.indices) : LevelOrder.sortedIndices(labels)
            var rank = [Int32](repeating: 0, count: order.count)
            for (position, code) in order.enumerated() { rank[code] = Int32(position) }
            ranks.append(rank)
            sortedLabels.append(order.map { labels[$0] })
        }
        let radix = Self.radix(levelCounts: fileLabels.map(\.count))
        let keys = usedKeys.sorted()
        var slotOfKey: [Int64: Int32] = [:]
        slotOfKey.reserveCapacity(keys.count)
        var labels: [String] = []
        labels.reserveCapacity(keys.count)
        var slotRanks = columns.map { _ in [Int32]() }
        for key in keys {
            slotOfKey[key] = Int32(labels.count)
            var rest = key
            var parts: [String] = []
            for c in columns.indices {
                let rank = rest / radix[c]
                rest %= radix[c]
                parts.append(sortedLabels[c][Int(rank)])
                slotRanks[c].append(Int32(rank))
            }
            labels.append(parts.joined(separator: ":"))
        }
        self.columns = columns
        self.ranks = slotRanks
        map = .interaction(columns: columns, rankOfCode: ranks, radix: radix, slotOfKey: slotOfKey)
        self.labels = labels
    }

    /// Place values of the mixed-radix key: the last column varies fastest.
    static func radix(levelCounts: [Int]) -> [Int64] {
        var radix = [Int64](repeating: 1, count: levelCounts.count)
        for c in stride(from: levelCounts.count - 2, through: 0, by: -1) {
            radix[c] = radix[c + 1] * Int64(max(levelCounts[c + 1], 1))
        }
        return radix
    }

    /// The key of row `r` of a chunk for an interaction (ranks in R's order).
    static func key(_ chunk: LMMBinaryChunk, row r: Int, columns: [Int], rankOfCode: [[Int32]], radix: [Int64]) -> Int64 {
        var key: Int64 = 0
        for (c, column) in columns.enumerated() {
            key += Int64(rankOfCode[c][Int(chunk.codeArrays[column][r])]) * radix[c]
        }
        return key
    }

    /// The slot of each of the chunk's rows `rows` (all rows when nil) into `target`.
    func slots(_ chunk: LMMBinaryChunk, rows: [Int32]?, rowCount: Int, into target: UnsafeMutablePointer<Int32>) {
        switch map {
        case .column(let column, let slotOfCode):
            chunk.codeArrays[column].withUnsafeBufferPointer { codes in
                switch (rows, slotOfCode) {
                case (nil, nil): target.update(from: codes.baseAddress!, count: rowCount)
                case (let rows?, nil): for (i, r) in rows.enumerated() { target[i] = codes[Int(r)] }
                case (nil, let map?): for i in 0..<rowCount { target[i] = map[Int(codes[i])] }
                case (let rows?, let map?): for (i, r) in rows.enumerated() { target[i] = map[Int(codes[Int(r)])] }
                }
            }
        case .interaction(let columns, let rankOfCode, let radix, let slotOfKey):
            for i in 0..<rowCount {
                let r = rows.map { Int($0[i]) } ?? i
                // Every complete row's combination was seen by the level pass.
                target[i] = slotOfKey[Self.key(chunk, row: r, columns: columns, rankOfCode: rankOfCode, radix: radix)]!
            }
        }
    }
}
