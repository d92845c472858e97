/// One factor's labels for the CSV row loop: generated labels (prefix and zero-padded number)
/// or a table of explicit ones, in memory the owner frees with ``deallocate()``.
struct LabelFormat {
    private let prefix: UnsafeMutablePointer<UInt8>
    private let prefixCount: Int
    private let width: Int
    /// Explicit labels concatenated, and where each starts (count + 1 offsets); nil when generated.
    private let table: UnsafeMutablePointer<UInt8>?
    private let offsets: UnsafeMutablePointer<Int>?

    init(_ labels: LevelLabels) {
        let prefixBytes = Array(labels.prefix.utf8)
        prefix = .allocate(capacity: max(prefixBytes.count, 1))
        prefix.initialize(from: prefixBytes, count: prefixBytes.count)
        prefixCount = prefixBytes.count
        width = labels.width
        if let explicit = labels.explicit {
            let bytes = explicit.flatMap { Array($0.utf8) }
            table = .allocate(capacity: max(bytes.count, 1))
            table!.initialize(from: bytes, count: bytes.count)
            offsets = .allocate(capacity: explicit.count + 1)
            var offset = 0
            for (k, label) in explicit.enumerated() {
                offsets![k] = offset
                offset += label.utf8.count
            }
            offsets![explicit.count] = offset
        } else {
            table = nil
            offsets = nil
        }
    }

    func deallocate() {
        prefix.deallocate()
        table?.deallocate()
        offsets?.deallocate()
    }

    /// Writes the label of `code` at `out`, returning the byte after it.
    @inline(__always)
    func write(_ code: Int, to out: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        if let table, let offsets {
            let start = offsets[code], count = offsets[code + 1] - start
            for j in 0..<count { out[j] = table[start + j] }
            return out + count
        }
        for j in 0..<prefixCount { out[j] = prefix[j] }
        var value = code + 1
        let end = out + prefixCount + width
        var p = end
        while p > out + prefixCount {
            p -= 1
            p.pointee = UInt8(truncatingIfNeeded: 48 + value % 10)
            value /= 10
        }
        return end
    }
}
