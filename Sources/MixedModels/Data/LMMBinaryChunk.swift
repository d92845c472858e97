/// Buffers for one chunk of an `.lmmbin` file, filled by ``LMMBinaryReader/readChunk(_:into:)``
/// and reused from chunk to chunk.
public struct LMMBinaryChunk: Sendable {
    /// Which chunk this is.
    public internal(set) var index = 0
    /// Index (from 0) in the file of the chunk's first row.
    public internal(set) var firstRow = 0
    /// Rows in the chunk.
    public internal(set) var rowCount = 0
    /// Kind of each column; storage for each column of its kind (the other kind's entry is empty).
    var kinds: [LMMBinaryColumn.Kind] = []
    var doubles: [[Double]] = []
    var codeArrays: [[Int32]] = []
    /// The chunk's bytes as stored, whose checksum is verified before they are copied out.
    var raw: [UInt8] = []

    /// Empty buffers; the first ``LMMBinaryReader/readChunk(_:into:)`` sizes them.
    public init() {}

    /// The values of float64 column `j` (``rowCount`` values; empty if column `j` is a factor).
    public func float64(_ j: Int) -> [Double] { doubles[j] }

    /// The codes of factor column `j` (``rowCount`` codes; empty if column `j` is float64).
    public func codes(_ j: Int) -> [Int32] { codeArrays[j] }

    /// The chunk's values, one entry per column of the file.
    public var columns: [LMMBinaryColumnValues] {
        kinds.indices.map { kinds[$0] == .float64 ? .float64(doubles[$0]) : .factor(codeArrays[$0]) }
    }
}
