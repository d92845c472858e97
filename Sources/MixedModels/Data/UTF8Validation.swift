/// Checks that factor labels and column names are UTF-8 text.
///
/// Labels are compared as `String`s after reading (R's order, the JSON and CSV outputs, saved
/// models and `predict`'s level lookup), and a `String` made from invalid UTF-8 replaces each bad
/// sequence by U+FFFD, so distinct byte strings (`g\xff`, `g\xfe`) would become one level.
/// Outputs must stay UTF-8 too (JSON requires it). So invalid UTF-8 in a label or a name is an
/// error at its file, line and column, rather than a second, byte-level notion of a label.
enum UTF8Validation {
    /// The offset of the first byte that does not belong to a well-formed UTF-8 sequence
    /// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or `nil`.
    static func firstInvalidByte(_ bytes: UnsafePointer<UInt8>, count: Int) -> Int? {
        var i = 0
        while i < count {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF   // the allowed range of the second byte
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            guard i + length <= count else { return i }
            guard bytes[i + 1] >= low, bytes[i + 1] <= high else { return i }
            for k in 2..<max(length, 2) where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }

    /// The error for a field of column `name` (field number `number`, 1-based) on `line` of
    /// `file` whose byte `byte` at `offset` is not UTF-8.
    static func error(byte: UInt8, offset: Int, column name: String, number: Int, file: String, line: Int) -> InputError {
        InputError("column \"\(name)\" has a value that is not valid UTF-8 (byte \(hex(byte)) at byte \(offset + 1) of the field); "
                   + "labels must be UTF-8 text, or distinct labels would merge: convert the file to UTF-8 "
                   + "(e.g. iconv -f latin1 -t utf-8)", file: file, line: line, column: number)
    }

    /// `0xFF`.
    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return "0x" + (digits.count == 1 ? "0" : "") + digits
    }

    /// The error for two labels of `column` that are equal as text but not as bytes
    /// (``LevelDictionary/equivalentLabels()``).
    static func equivalentLabelsError(column: String, _ pair: (first: [UInt8], second: [UInt8]), file: String) -> InputError {
        func spelled(_ bytes: [UInt8]) -> String { bytes.map(hex).joined(separator: " ") }
        let text = String(decoding: pair.first, as: UTF8.self)
        return InputError("column \"\(column)\" has two labels that are the same text \"\(text)\" in different Unicode "
                          + "spellings (bytes \(spelled(pair.first)) and \(spelled(pair.second))): R would read them as two "
                          + "levels, which lmm cannot keep apart; write them one way (for example, normalise the file to NFC)",
                          file: file)
    }
}
