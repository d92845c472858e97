@testable import MixedModels

/// Recomputes the checksums of an `.lmmbin` file's bytes after a test patched them: what a
/// crafted (not merely corrupted) file would carry, so that the reader's other checks — codes,
/// sizes, the unfinished marker — are reached.
enum LMMBinaryResealing {
    static func integer(_ bytes: [UInt8], at offset: Int, size: Int) -> Int {
        (0..<size).reversed().reduce(0) { $0 << 8 | Int(bytes[offset + $1]) }
    }

    static func store(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for k in 0..<4 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
    }

    /// `bytes` with the chunk, footer and header checksums made to match their contents (the
    /// header's sizes as written before the patch: `rowCount` and `rowsPerChunk` given). Bytes
    /// too damaged to find the parts in are returned unchanged.
    static func reseal(_ original: [UInt8], rowCount: Int, rowsPerChunk: Int) -> [UInt8] {
        var bytes = original
        guard bytes.count >= 64 else { return original }
        let dataOffset = integer(bytes, at: 32, size: 8)
        let columnCount = integer(bytes, at: 12, size: 4)
        guard dataOffset >= 0, dataOffset <= bytes.count, columnCount <= 16 else { return original }
        var columns: [LMMBinaryColumn] = []
        var position = LMMBinaryFormat.fixedHeaderSize
        for j in 0..<columnCount {
            guard position + 8 <= dataOffset, let kind = LMMBinaryColumn.Kind(rawValue: bytes[position]) else { return original }
            let length = integer(bytes, at: position + 4, size: 4)
            guard length <= dataOffset else { return original }
            columns.append(LMMBinaryColumn(name: "c\(j)", kind: kind))
            position += 8 + length
        }
        let layout = LMMBinaryLayout(columns: columns, rowsPerChunk: rowsPerChunk, dataOffset: dataOffset)
        let chunkCount = layout.chunkCount(rowCount: rowCount)
        guard layout.footerOffset(rowCount: rowCount) + 12 + 4 * chunkCount <= bytes.count else { return original }
        let checksums = bytes.count - 12 - 4 * chunkCount
        for c in 0..<chunkCount {
            let start = layout.chunkOffset(c)
            let size = layout.chunkByteCount(rows: layout.rows(inChunk: c, rowCount: rowCount))
            store(CRC32C.checksum(bytes[start..<start + size]), in: &bytes, at: checksums + 4 * c)
        }
        let footer = layout.footerOffset(rowCount: rowCount)
        store(CRC32C.checksum(bytes[footer..<bytes.count - 12]), in: &bytes, at: bytes.count - 12)
        let at = LMMBinaryFormat.headerChecksumOffset
        store(0, in: &bytes, at: at)
        store(CRC32C.checksum(bytes[0..<dataOffset]), in: &bytes, at: at)
        return bytes
    }
}
