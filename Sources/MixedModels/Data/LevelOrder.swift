import Foundation

/// R's order of factor levels, for the CSV reader and for any code that must sort labels as R
/// does (e.g. interaction levels).
///
/// R sorts the distinct values of a character column with its default collation, which for this
/// project's reference R is ICU's root collation (`icuGetCollate()` is `"root"`). This is an
/// approximation of ICU root written without ICU, exact for ASCII labels and close for Latin
/// text. ``CollationKey`` documents the rules and where they differ from ICU.
///
/// Why not Foundation's ICU collation (`String.compare(_:options:range:locale:)` with the root
/// locale)? Measured with `lmm-bench kernels --only levels` (release, Intel(R) Xeon(R) Processor,
/// loaded machine): sorting 100,000 labels took 0.30 s here and 17.6 s through Foundation (about
/// 58× slower). And it does not give R's order: of the 11
/// orders printed by R in LevelOrderTests, Foundation's comparison reproduces 9: it does not put
/// `fi` before `ﬁ`, `ij` before `ĳ`, or a space before a no-break space, as R (ICU's tertiary
/// level) does.
package enum LevelOrder {
    /// True when `a` sorts before `b` in R's default string collation (approximated ICU root).
    static func rLevelOrder(_ a: String, _ b: String) -> Bool {
        CollationKey(a) < CollationKey(b)
    }

    /// The indices of `labels` in R's factor-level order: numeric order when every label is a
    /// number (subject ids "308" < "309" < "1000"; equal numbers such as "1" and "1.0" then by
    /// collation), otherwise by ``rLevelOrder(_:_:)``.
    package static func sortedIndices(_ labels: [String]) -> [Int] {
        var values: [Double] = []
        values.reserveCapacity(labels.count)
        for label in labels {
            // NaN is not orderable, so a "NaN" label makes the column sort as text.
            guard let value = NumberParser.parse(label), !value.isNaN else {
                values.removeAll()
                break
            }
            values.append(value)
        }
        let keys = labels.map(CollationKey.init)
        if !labels.isEmpty, values.count == labels.count {
            return labels.indices.sorted { i, j in
                values[i] != values[j] ? values[i] < values[j] : keys[i] < keys[j]
            }
        }
        return labels.indices.sorted { keys[$0] < keys[$1] }
    }
}

/// A sort key that orders strings like ICU's root collation (as R's `sort` does), approximately.
///
/// Each string becomes three sequences of weights, compared one after the other, as ICU does
/// level by level:
/// 1. **Primary**, one weight per character: whitespace < punctuation and symbols (in CLDR root
///    order; for ASCII `_ - , ; : ! ? . ' " ( ) [ ] { } @ * / \ & # % ` ^ + < = > | ~ $`, and
///    about 170 common non-ASCII ones placed as R's own `sort` places them) < digits (by digit
///    value, so "10" < "9") < Latin letters (case- and accent-insensitive, by base letter a–z)
///    < other letters (by lowercase code point) < anything else. A string that is a primary
///    prefix of another sorts first. Control and format characters are ignored.
/// 2. **Secondary**, accents: unaccented first; between accents ICU's order (acute < grave <
///    breve < circumflex < caron < ring < diaeresis < double acute < tilde < dot above <
///    cedilla < ogonek < macron < …).
/// 3. **Tertiary**, case and variants: lowercase before uppercase at the first difference;
///    compatibility variants (no-break space, superscript digits, ligatures such as `ﬁ`) after
///    the plain characters.
///
/// Finally, strings equal at all three levels are ordered by their UTF-8 bytes, so the order is
/// total (ICU would call them equal, and R would keep them in input order).
///
/// Non-ASCII text is taken apart first: canonical decomposition (é → e + ◌́), then
/// compatibility decomposition of what remains (ﬁ → f i, ² → 2, ½ → 1 ⁄ 2, no-break space →
/// space), and a few letters ICU treats specially: ß (ss), æ (ae), œ (oe), ø, đ, ð, ł, ħ (a
/// letter plus a secondary difference), ı, ŋ, þ (their own letters after i, n and z).
///
/// Known differences from ICU: non-Latin scripts sort by code point among "other letters" (ICU
/// orders them by script and alphabet); punctuation and symbols missing from the table go
/// after the last listed character of their Unicode category; contractions and the accent order
/// of rarer marks are not modelled.
struct CollationKey: Comparable, Sendable {
    /// Primary weights, 0, secondary weights, 0, tertiary weights, 0, then the UTF-8 bytes + 1.
    /// Every weight is ≥ 1, so one lexicographic comparison compares level by level.
    let weights: [UInt32]

    init(_ text: String) {
        var primary: [UInt32] = []
        var secondary: [UInt32] = []
        var tertiary: [UInt32] = []
        let utf8 = Array(text.utf8)
        primary.reserveCapacity(utf8.count)
        secondary.reserveCapacity(utf8.count)
        tertiary.reserveCapacity(utf8.count)

        func add(_ element: Element) {
            if element.primary != 0 { primary.append(element.primary) }
            if element.secondary != 0 { secondary.append(element.secondary) }
            if element.tertiary != 0 { tertiary.append(element.tertiary) }
        }

        if utf8.allSatisfy({ $0 < 0x80 }) {
            // Fast path: most labels are ASCII, and need no Unicode decomposition.
            for byte in utf8 { add(Self.asciiElements[Int(byte)]) }
        } else {
            for scalar in text.decomposedStringWithCanonicalMapping.unicodeScalars {
                Self.elements(of: scalar, add)
            }
        }

        var weights = primary
        weights.reserveCapacity(primary.count + secondary.count + tertiary.count + utf8.count + 3)
        weights.append(0)
        weights += secondary
        weights.append(0)
        weights += tertiary
        weights.append(0)
        for byte in utf8 { weights.append(UInt32(byte) + 1) }
        self.weights = weights
    }

    static func < (lhs: CollationKey, rhs: CollationKey) -> Bool {
        lhs.weights.lexicographicallyPrecedes(rhs.weights)
    }

    /// The weights of one character at the three levels; 0 means "none at this level".
    struct Element: Sendable {
        var primary: UInt32
        var secondary: UInt32
        var tertiary: UInt32
    }

    // MARK: Weights

    // A primary weight is a rank (the character class, or a symbol's place in the table) in
    // the high 11 bits and a sub-order in the low 21 bits (enough for any code point).
    private static func primary(rank: UInt32, _ sub: UInt32 = 0) -> UInt32 { rank << 21 | sub }
    private static let whitespaceRank: UInt32 = 1
    private static let firstSymbolRank: UInt32 = 2
    private static let digitRank: UInt32 = 1000
    private static let latinRank: UInt32 = 1001
    private static let otherLetterRank: UInt32 = 1002
    private static let otherRank: UInt32 = 1003

    private static let commonSecondary: UInt32 = 1
    private static let strokeSecondary: UInt32 = 0x20_0000
    private static let ethSecondary: UInt32 = 0x20_0001
    private static let ligatureSecondary: UInt32 = 0x20_0002

    private static let lowerTertiary: UInt32 = 1
    private static let compatibilityLowerTertiary: UInt32 = 2
    private static let upperTertiary: UInt32 = 3
    private static let compatibilityUpperTertiary: UInt32 = 4

    /// Punctuation and symbols in ICU root order, as R sorts them (`sort()` of these characters
    /// in R with ICU): the ASCII ones and common ones from Latin-1, General Punctuation,
    /// arrows, mathematical operators, shapes and currency signs.
    private static let symbolOrder: [UInt32] = [
        0x203E, 0x005F, 0x2017, 0x002D, 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2053,
        0x002C, 0x3001, 0x003B, 0x204F, 0x003A, 0x0021, 0x203C, 0x2049, 0x00A1, 0x003F, 0x2048,
        0x2047, 0x00BF, 0x203D, 0x002E, 0x2024, 0x2025, 0x2026, 0x3002, 0x00B7, 0x2055, 0x2056,
        0x2058, 0x2059, 0x205A, 0x205B, 0x205C, 0x205D, 0x205E, 0x0027, 0x2018, 0x2019, 0x201A,
        0x201B, 0x2039, 0x203A, 0x0022, 0x201C, 0x201D, 0x201E, 0x201F, 0x00AB, 0x00BB, 0x0028,
        0x0029, 0x005B, 0x005D, 0x007B, 0x007D, 0x2045, 0x2046, 0x2016, 0x00A7, 0x00B6, 0x204B,
        0x0040, 0x002A, 0x204E, 0x2051, 0x002F, 0x005C, 0x0026, 0x204A, 0x0023, 0x0025, 0x2030,
        0x2031, 0x2020, 0x2021, 0x2022, 0x2023, 0x2027, 0x2043, 0x204C, 0x204D, 0x2032, 0x2033,
        0x2034, 0x2057, 0x2035, 0x2036, 0x2037, 0x3003, 0x2038, 0x203B, 0x203F, 0x2054, 0x2040,
        0x2050, 0x2041, 0x2042, 0x0060, 0x00B4, 0x005E, 0x00AF, 0x00A8, 0x00B8, 0x00B0, 0x00A9,
        0x00AE, 0x2190, 0x2192, 0x2191, 0x2193, 0x2194, 0x2195, 0x2196, 0x2197, 0x2198, 0x2199,
        0x2200, 0x2201, 0x2202, 0x2203, 0x2204, 0x2205, 0x2206, 0x2207, 0x2208, 0x2209, 0x220A,
        0x220B, 0x220C, 0x220D, 0x220E, 0x220F, 0x002B, 0x00B1, 0x00F7, 0x00D7, 0x003C, 0x003D,
        0x2260, 0x003E, 0x00AC, 0x007C, 0x00A6, 0x007E, 0x2212, 0x2052, 0x2044, 0x221E, 0x2264,
        0x2265, 0x25A0, 0x25A1, 0x25A2, 0x25A3, 0x2605, 0x2606, 0x00A4, 0x00A2, 0x0024, 0x00A3,
        0x00A5, 0x20A0, 0x20A1, 0x20A2, 0x20A3, 0x20A4, 0x20A5, 0x20A6, 0x20A7, 0x20A9, 0x20AA,
        0x20AB, 0x20AC, 0x20AD, 0x20AE, 0x20AF, 0x20B0, 0x20B1, 0x20B2, 0x20B3, 0x20B4, 0x20B5,
        0x20B6, 0x20B7, 0x20B8, 0x20B9, 0x20BA, 0x20BB, 0x20BC, 0x20BD, 0x20BE, 0x20BF, 0x20C0,
    ]

    private static let symbolRanks: [UInt32: UInt32] = {
        var ranks: [UInt32: UInt32] = [:]
        for (index, scalar) in symbolOrder.enumerated() { ranks[scalar] = firstSymbolRank + UInt32(index) }
        return ranks
    }()

    /// Where a symbol missing from ``symbolOrder`` goes: right after this listed character of
    /// the same Unicode category (then by code point).
    private static func anchor(for category: Unicode.GeneralCategory) -> UInt32 {
        switch category {
        case .modifierSymbol: return 0x00B8   // ¸, the last listed modifier symbol
        case .otherSymbol: return 0x00AE      // ®
        case .mathSymbol: return 0x2265       // ≥
        case .currencySymbol: return 0x20C0   // the last listed currency sign
        default: return 0x2042                // the last listed punctuation
        }
    }

    /// ICU's secondary order of the common combining accents (as R sorts "a" + each accent).
    private static let accentOrder: [UInt32] = [
        0x301, 0x300, 0x306, 0x302, 0x30C, 0x30A, 0x308, 0x30B, 0x303, 0x307, 0x327, 0x328, 0x304,
        0x323, 0x331,
    ]

    private static func latin(_ letter: Unicode.Scalar, upper: Bool = false, compatibility: Bool = false,
                              afterLetter: Bool = false) -> Element {
        let index = letter.value - Unicode.Scalar("a").value
        let tertiary: UInt32 = switch (upper, compatibility) {
        case (false, false): lowerTertiary
        case (false, true): compatibilityLowerTertiary
        case (true, false): upperTertiary
        case (true, true): compatibilityUpperTertiary
        }
        return Element(primary: primary(rank: latinRank, 2 * index + (afterLetter ? 1 : 0)),
                       secondary: commonSecondary, tertiary: tertiary)
    }

    private static func mark(_ secondary: UInt32) -> Element {
        Element(primary: 0, secondary: secondary, tertiary: lowerTertiary)
    }

    private static let asciiElements: [Element] = (0..<128).map { code -> Element in
        let scalar = Unicode.Scalar(UInt8(code))
        switch scalar {
        case "a"..."z":
            return latin(scalar)
        case "A"..."Z":
            return latin(Unicode.Scalar(UInt8(code + 32)), upper: true)
        case "0"..."9":
            return Element(primary: primary(rank: digitRank, scalar.value - Unicode.Scalar("0").value),
                           secondary: commonSecondary, tertiary: lowerTertiary)
        case "\t", "\n", "\u{0B}", "\u{0C}", "\r", " ":
            return Element(primary: primary(rank: whitespaceRank, scalar.value),
                           secondary: commonSecondary, tertiary: lowerTertiary)
        default:
            if let rank = symbolRanks[scalar.value] {
                return Element(primary: primary(rank: rank), secondary: commonSecondary, tertiary: lowerTertiary)
            }
            return Element(primary: 0, secondary: 0, tertiary: 0)   // control characters: ignorable
        }
    }

    /// Letters that ICU does not treat as a base letter plus combining accents.
    private static let specialLetters: [UInt32: [Element]] = [
        0x00DF: [latin("s"), mark(ligatureSecondary), latin("s")],                                   // ß
        0x1E9E: [latin("s", upper: true), mark(ligatureSecondary), latin("s", upper: true)],         // ẞ
        0x00E6: [latin("a", compatibility: true), mark(ligatureSecondary), latin("e", compatibility: true)], // æ
        0x00C6: [latin("a", upper: true, compatibility: true), mark(ligatureSecondary),
                 latin("e", upper: true, compatibility: true)],                                      // Æ
        0x0153: [latin("o", compatibility: true), mark(ligatureSecondary), latin("e", compatibility: true)], // œ
        0x0152: [latin("o", upper: true, compatibility: true), mark(ligatureSecondary),
                 latin("e", upper: true, compatibility: true)],                                      // Œ
        0x00F8: [latin("o"), mark(strokeSecondary)],                                                 // ø
        0x00D8: [latin("o", upper: true), mark(strokeSecondary)],                                    // Ø
        0x0111: [latin("d"), mark(strokeSecondary)],                                                 // đ
        0x0110: [latin("d", upper: true), mark(strokeSecondary)],                                    // Đ
        0x00F0: [latin("d"), mark(ethSecondary)],                                                    // ð
        0x00D0: [latin("d", upper: true), mark(ethSecondary)],                                       // Ð
        0x0142: [latin("l"), mark(strokeSecondary)],                                                 // ł
        0x0141: [latin("l", upper: true), mark(strokeSecondary)],                                    // Ł
        0x0127: [latin("h"), mark(strokeSecondary)],                                                 // ħ
        0x0126: [latin("h", upper: true), mark(strokeSecondary)],                                    // Ħ
        0x0131: [latin("i", afterLetter: true)],                                                     // ı
        0x014B: [latin("n", afterLetter: true)],                                                     // ŋ
        0x014A: [latin("n", upper: true, afterLetter: true)],                                        // Ŋ
        0x00FE: [latin("z", afterLetter: true)],                                                     // þ
        0x00DE: [latin("z", upper: true, afterLetter: true)],                                        // Þ
    ]

    /// The elements of one scalar of a canonically decomposed string.
    private static func elements(of scalar: Unicode.Scalar, _ add: (Element) -> Void) {
        if scalar.isASCII {
            add(asciiElements[Int(scalar.value)])
            return
        }
        if let special = specialLetters[scalar.value] {
            special.forEach(add)
            return
        }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark:
            if let index = accentOrder.firstIndex(of: scalar.value) {
                add(mark(2 + UInt32(index)))
            } else {
                add(mark(100 + scalar.value))
            }
            return
        case .control, .format:
            return
        default:
            break
        }
        if let rank = symbolRanks[scalar.value] {
            // Before the compatibility decomposition: spacing accents such as ´ and ¨ decompose
            // to a space plus a combining accent, yet ICU sorts them as symbols.
            add(Element(primary: primary(rank: rank), secondary: commonSecondary, tertiary: lowerTertiary))
            return
        }
        // Compatibility variants (ﬁ, ², no-break space, fullwidth forms, …) sort as the
        // characters they stand for, with a tertiary difference.
        let compatibility = String(scalar).decomposedStringWithCompatibilityMapping.unicodeScalars
        if compatibility.count != 1 || compatibility.first != scalar {
            for part in compatibility {
                elements(of: part) { element in
                    var element = element
                    if element.tertiary == lowerTertiary { element.tertiary = compatibilityLowerTertiary }
                    if element.tertiary == upperTertiary { element.tertiary = compatibilityUpperTertiary }
                    add(element)
                }
            }
            return
        }
        let tertiary = properties.isUppercase ? upperTertiary : lowerTertiary
        if properties.isWhitespace {
            add(Element(primary: primary(rank: whitespaceRank, scalar.value), secondary: commonSecondary,
                        tertiary: tertiary))
        } else if properties.numericType == .decimal, let value = properties.numericValue {
            // Other scripts' digits sort with the ASCII digit of the same value.
            add(Element(primary: primary(rank: digitRank, UInt32(value)), secondary: commonSecondary,
                        tertiary: compatibilityLowerTertiary))
        } else if properties.isAlphabetic {
            let lower = properties.lowercaseMapping.unicodeScalars.first?.value ?? scalar.value
            add(Element(primary: primary(rank: otherLetterRank, lower), secondary: commonSecondary,
                        tertiary: tertiary))
        } else {
            switch properties.generalCategory {
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                 .initialPunctuation, .finalPunctuation, .otherPunctuation,
                 .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
                let rank = symbolRanks[anchor(for: properties.generalCategory)] ?? firstSymbolRank
                add(Element(primary: primary(rank: rank, scalar.value + 1), secondary: commonSecondary,
                            tertiary: tertiary))
            default:
                add(Element(primary: primary(rank: otherRank, scalar.value), secondary: commonSecondary,
                            tertiary: tertiary))
            }
        }
    }
}
