#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One field of a scanned row: bytes `start ..< end` of ``CSVScanner/buffer``, with the
/// surrounding quotes removed and doubled quotes (`""`) already undone.
struct CSVFieldSpan {
    var start: Int
    var end: Int
    /// The field was enclosed in quotes (so its spaces are data, even in a header name).
    var quoted: Bool
    /// The field contains doubled quotes still to be undone (internal to the scanner).
    var escaped: Bool

    var count: Int { end - start }
}

/// Splits a CSV byte stream into rows and fields, chunk by chunk (RFC 4180 with CRLF or LF
/// line ends, an optional UTF-8 byte order mark, blank lines skipped).
///
/// The scanner holds one chunk (4 MiB by default) in a buffer it owns, and finds field
/// boundaries with a byte loop over it. A row cut off by the end of the chunk is not
/// half-parsed: its bytes are moved to the front of the buffer, the next chunk is read behind
/// them and the row is scanned again from its start. So fields and rows may straddle chunks,
/// and memory stays at one chunk (more only for a single row longer than a chunk, for which the
/// buffer doubles).
///
/// ``nextRows(limit:)`` scans a batch of rows at once, so the reader can convert the batch
/// column by column: consecutive lookups in a large factor dictionary are then independent and
/// their cache misses overlap, instead of one miss per row stalling the loop. Row boundaries
/// are found before any field is converted, so a cut-off row never leaves a half-row in the
/// columns or a truncated level in a factor's dictionary.
final class CSVScanner {
    private let source: CSVByteSource
    /// The current chunk; fields index into it. Valid until the next call of ``nextRows(limit:)``.
    private(set) var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var filled = 0
    private var position = 0
    private var atEndOfInput = false
    private var checkedByteOrderMark = false
    /// Bytes read from the source before the current buffer contents.
    private var bytesBeforeBuffer = 0

    /// Fields of the scanned rows: field `k` of batch row `r` is `fields[r * stride + k]`.
    /// Only the first `stride` fields of a row are kept (the count is always right).
    private(set) var fields: UnsafeMutablePointer<CSVFieldSpan>
    /// Fields kept per row: the header's field count (grows while reading the header).
    private(set) var stride: Int
    /// Number of fields of each batch row.
    private(set) var fieldCounts: UnsafeMutablePointer<Int>
    /// Physical line (1-based) on which each batch row starts.
    private(set) var lines: UnsafeMutablePointer<Int>
    private let batchCapacity: Int
    /// Rows per batch for the current stride: fewer for very wide rows, so that the field
    /// table stays small (a header of a million fields must not reserve a million per row).
    private var rowsPerBatch: Int
    /// May `stride` grow to fit a longer row (only while reading the header)?
    private(set) var growsStride = true

    /// Physical line on which the next row starts (quoted fields may span lines).
    private var nextLine = 1

    var sourceName: String { source.name }

    /// Bytes of input scanned so far (the rows returned, the blank lines and the header).
    var scannedBytes: Int { bytesBeforeBuffer + position }

    init(source: CSVByteSource, chunkSize: Int, batchCapacity: Int = 128) {
        self.source = source
        capacity = max(chunkSize, 4)   // the byte order mark check needs 3 bytes at once
        buffer = .allocate(capacity: capacity)
        self.batchCapacity = max(batchCapacity, 1)
        stride = 16
        rowsPerBatch = Self.rowsPerBatch(stride: stride, batchCapacity: self.batchCapacity)
        fields = .allocate(capacity: rowsPerBatch * stride)
        fieldCounts = .allocate(capacity: self.batchCapacity)
        lines = .allocate(capacity: self.batchCapacity)
    }

    deinit {
        buffer.deallocate()
        fields.deallocate()
        fieldCounts.deallocate()
        lines.deallocate()
    }

    /// Scans up to `limit` (≤ the batch capacity) non-blank rows and returns how many, 0 at the
    /// end of the input. A batch stops early at the end of the buffered chunk.
    ///
    /// Throws ``InputError`` for an unterminated quoted field or text after a closing quote
    /// (once the rows before it have been returned), and when the input cannot be read.
    func nextRows(limit: Int) throws -> Int {
        let limit = min(limit, rowsPerBatch)
        var rows = 0
        scanning: while rows < limit {
            if position >= filled {
                // Refilling moves the buffer's bytes, so only with no scanned row in hand.
                if atEndOfInput || rows > 0 { break }
                try refill()
                continue
            }
            let row = fields + rows * stride
            let scan = scanRow(into: row)
            switch scan.outcome {
            case .complete:
                if scan.fieldCount > stride, growsStride {
                    // Header: make room and scan it again (growing drops the batch's fields).
                    if rows > 0 { break scanning }
                    growStride(to: scan.fieldCount)
                    continue
                }
                let line = nextLine
                nextLine += 1 + scan.extraLines
                position = scan.next
                if scan.fieldCount == 1, !row[0].quoted, row[0].start == row[0].end { continue }   // blank line
                for k in 0..<min(scan.fieldCount, stride) where row[k].escaped { undoDoubledQuotes(&row[k]) }
                fieldCounts[rows] = scan.fieldCount
                lines[rows] = line
                rows += 1
            case .incomplete:
                if rows > 0 { break scanning }
                try refill()
            case .unterminatedQuote:
                if rows > 0 { break scanning }
                throw InputError("unterminated quoted field: expected a closing quote (\") before the end of the file",
                                 file: source.name, line: nextLine + scan.extraLines, column: scan.fieldCount + 1)
            case .textAfterQuote:
                if rows > 0 { break scanning }
                let byte = buffer[scan.next]
                let found = byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte \(byte)"
                throw InputError("expected a comma or the end of the line after a closing quote, found \(found)",
                                 file: source.name, line: nextLine + scan.extraLines, column: scan.fieldCount + 1)
            }
        }
        return rows
    }

    // MARK: Row scanning

    private enum Outcome { case complete, incomplete, unterminatedQuote, textAfterQuote }

    private struct Scan {
        var outcome: Outcome
        /// Complete: where the next row starts. Text after a quote: the offending byte.
        var next = 0
        /// Complete: the number of fields. Errors: the 0-based index of the bad field.
        var fieldCount = 0
        /// Line breaks inside quoted fields before `next` (errors: before the bad field).
        var extraLines = 0
    }

    private static let quote = UInt8(ascii: "\"")
    private static let comma = UInt8(ascii: ",")
    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")

    /// Finds the fields of the row starting at `position` and stores the first `stride` of them
    /// at `fields` (counting all). Returns `.incomplete` when the row may continue past the
    /// buffered bytes (never at the end of the input).
    @inline(__always)
    private func scanRow(into fields: UnsafeMutablePointer<CSVFieldSpan>) -> Scan {
        let base = buffer
        let end = filled
        let final = atEndOfInput
        let fieldCapacity = stride
        var p = position
        var field = 0
        var extraLines = 0
        while true {
            var start = p
            let stop: Int
            var quoted = false
            var escaped = false
            // A field is quoted when its first byte other than blanks is a quote.
            var opensQuote = false
            if p < end {
                let first = base[p]
                if first == Self.quote {
                    opensQuote = true
                } else if first == Self.space || first == Self.tab {
                    var q = p + 1
                    while q < end, base[q] == Self.space || base[q] == Self.tab { q += 1 }
                    if q >= end, !final { return Scan(outcome: .incomplete) }
                    if q < end, base[q] == Self.quote {
                        opensQuote = true
                        p = q
                    }
                }
            }
            if opensQuote {
                quoted = true
                let quoteLines = extraLines
                p += 1
                start = p
                while true {
                    guard p < end else {
                        return Scan(outcome: final ? .unterminatedQuote : .incomplete,
                                    fieldCount: field, extraLines: quoteLines)
                    }
                    let byte = base[p]
                    if byte == Self.quote {
                        // A quote is doubled (data) or closes the field; at the buffer's edge we
                        // cannot tell yet.
                        if p + 1 < end {
                            if base[p + 1] == Self.quote {
                                escaped = true
                                p += 2
                                continue
                            }
                        } else if !final {
                            return Scan(outcome: .incomplete)
                        }
                        break
                    }
                    if byte == Self.lineFeed {
                        extraLines += 1
                    } else if byte == Self.carriageReturn, p + 1 >= end || base[p + 1] != Self.lineFeed {
                        extraLines += 1   // a lone CR ends a line too
                    }
                    p += 1
                }
                stop = p
                p += 1
                // Blanks may follow the closing quote; anything else but a separator is an error.
                while p < end, base[p] == Self.space || base[p] == Self.tab { p += 1 }
                if p < end {
                    let byte = base[p]
                    if byte != Self.comma, byte != Self.lineFeed, byte != Self.carriageReturn {
                        return Scan(outcome: .textAfterQuote, next: p, fieldCount: field, extraLines: extraLines)
                    }
                } else if !final {
                    return Scan(outcome: .incomplete)
                }
            } else {
                // Unquoted: up to the next comma or line end. Every delimiter is < 0x2D, and
                // most bytes (digits, letters, '.', '-') are not, so 8 bytes at a time skip to
                // the first byte < 0x2D, which is then checked exactly.
                while true {
                    if p + 8 <= end {
                        let word = UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self)
                        let below = Self.bytesBelow0x2D(word)
                        if below == 0 {
                            p += 8
                            continue
                        }
                        p += below.trailingZeroBitCount >> 3
                    } else if p >= end {
                        break
                    }
                    let byte = base[p]
                    if byte <= Self.comma,
                       byte == Self.comma || byte == Self.lineFeed || byte == Self.carriageReturn {
                        break
                    }
                    p += 1
                }
                if p >= end, !final { return Scan(outcome: .incomplete) }
                stop = p
            }
            if field < fieldCapacity {
                fields[field] = CSVFieldSpan(start: start, end: stop, quoted: quoted, escaped: escaped)
            }
            field += 1
            if p >= end {   // end of input ends the last row
                return Scan(outcome: .complete, next: p, fieldCount: field, extraLines: extraLines)
            }
            let byte = base[p]
            if byte == Self.comma {
                p += 1
                continue
            }
            if byte == Self.lineFeed {
                return Scan(outcome: .complete, next: p + 1, fieldCount: field, extraLines: extraLines)
            }
            // CR: CRLF or a lone CR; at the buffer's edge we cannot tell which yet.
            if p + 1 < end {
                let next = base[p + 1] == Self.lineFeed ? p + 2 : p + 1
                return Scan(outcome: .complete, next: next, fieldCount: field, extraLines: extraLines)
            }
            if !final { return Scan(outcome: .incomplete) }
            return Scan(outcome: .complete, next: p + 1, fieldCount: field, extraLines: extraLines)
        }
    }

    /// The high bit of each byte of `word` below 0x2D, exactly for the lowest such byte (bytes
    /// above it may be flagged wrongly: a borrow only comes from a lower flagged byte).
    @inline(__always)
    private static func bytesBelow0x2D(_ word: UInt64) -> UInt64 {
        (word &- 0x2D2D_2D2D_2D2D_2D2D) & ~word & 0x8080_8080_8080_8080
    }

    /// Turns each `""` of `field` into `"`, in place (the row is complete, so its bytes are
    /// never scanned again).
    private func undoDoubledQuotes(_ field: inout CSVFieldSpan) {
        var read = field.start
        var write = field.start
        while read < field.end {
            let byte = buffer[read]
            buffer[write] = byte
            write += 1
            read += byte == Self.quote ? 2 : 1
        }
        field.end = write
        field.escaped = false
    }

    // MARK: Buffer management

    /// Keeps the unscanned bytes, moved to the front, and reads more behind them (doubling the
    /// buffer when a single row fills it). Sets `atEndOfInput` when the source is exhausted.
    private func refill() throws {
        let unscanned = filled - position
        if position > 0 {
            bytesBeforeBuffer += position
            if unscanned > 0 { memmove(buffer, buffer + position, unscanned) }
            position = 0
            filled = unscanned
        }
        if filled == capacity {
            let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * capacity)
            larger.update(from: buffer, count: filled)
            buffer.deallocate()
            buffer = larger
            capacity *= 2
        }
        repeat {
            let count = try source.fill(buffer + filled, capacity: capacity - filled)
            if count == 0 {
                atEndOfInput = true
            } else {
                filled += count
            }
            // The byte order mark check needs the first three bytes (chunks may be tiny).
        } while !checkedByteOrderMark && filled < 3 && !atEndOfInput && filled < capacity
        if !checkedByteOrderMark, filled >= 3 || atEndOfInput {
            checkedByteOrderMark = true
            if filled >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { position = 3 }
        }
    }

    /// Only called with no row in the batch, so no field needs to be kept.
    private func growStride(to count: Int) {
        setStride(max(count, 2 * stride))
    }

    /// Fixes the stride at the header's field count, so a data row keeps exactly its fields.
    func fixStride(_ fieldCount: Int) {
        growsStride = false
        if fieldCount != stride { setStride(max(fieldCount, 1)) }
    }

    private func setStride(_ newStride: Int) {
        fields.deallocate()
        stride = newStride
        rowsPerBatch = Self.rowsPerBatch(stride: stride, batchCapacity: batchCapacity)
        fields = .allocate(capacity: rowsPerBatch * stride)
    }

    private static func rowsPerBatch(stride: Int, batchCapacity: Int) -> Int {
        max(1, min(batchCapacity, (1 << 16) / max(stride, 1)))
    }
}
