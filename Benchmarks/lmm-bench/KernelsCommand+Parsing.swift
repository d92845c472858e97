import Foundation
import MixedModels
#if canImport(Glibc)
import Glibc
#endif

/// The two hand-written parts of the data input, each against the library it replaces:
/// the float parser (``NumberParser``, with its Eisel-Lemire table) against glibc's `strtod`, and
/// R's level order (``LevelOrder``) against Foundation's ICU collation.
extension KernelsCommand {
    /// ns per number, both ways, on the same newline-separated buffer of `numberCount` decimals:
    /// shortest round-trip doubles (17 significant digits at most: Swift's `description`, what
    /// datagen writes; these need Eisel-Lemire or `strtod`), R's `write.csv` precision (15
    /// significant digits: Clinger's fast path) and short values (`12.5`).
    func numberParsing() throws {
        var generator = SplitMix64(seed: 7)
        let kinds: [(name: String, format: (Double) -> String)] = [
            ("shortest round-trip (Swift description, ≤ 17 digits)", { "\($0)" }),
            ("R write.csv (%.15g)", { String(format: "%.15g", $0) }),
            ("short (%.1f)", { String(format: "%.1f", $0) }),
        ]
        for kind in kinds {
            var text: [UInt8] = []
            var fields: [(start: Int, count: Int)] = []
            fields.reserveCapacity(numberCount)
            for _ in 0..<numberCount {
                let value = (generator.nextDouble() - 0.5) * pow(10, Double(generator.next() % 7) - 2)
                let start = text.count
                text += Array(kind.format(value).utf8)
                fields.append((start, text.count - start))
                text.append(UInt8(ascii: "\n"))
            }
            text.append(0)
            var mismatches = 0
            let (ours, libc) = text.withUnsafeBufferPointer { buffer -> (Timing, Timing) in
                let base = buffer.baseAddress!
                var sum = 0.0
                // Same results first: NumberParser is correctly rounded, as glibc's strtod.
                for field in fields {
                    let a = NumberParser.parse(base + field.start, count: field.count)
                    let b = base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { strtod($0 + field.start, nil) }
                    if a?.bitPattern != b.bitPattern { mismatches += 1 }
                }
                let ours = Harness.measure(seconds: seconds, minimumSamples: 5) {
                    for field in fields { sum += NumberParser.parse(base + field.start, count: field.count) ?? 0 }
                }
                // strtod straight on the buffer (the newline ends each number): its best case,
                // without the copy to a NUL-terminated buffer a CSV field would need.
                let libc = base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                    Harness.measure(seconds: seconds, minimumSamples: 5) {
                        for field in fields {
                            var end: UnsafeMutablePointer<CChar>?
                            sum += strtod(chars + field.start, &end)
                            if end != UnsafeMutablePointer(mutating: chars + field.start + field.count) { sum += 1 }
                        }
                    }
                }
                if sum == 42 { print("") }   // keeps the sums alive
                return (ours, libc)
            }
            let n = Double(numberCount)
            print(String(format: "numbers, %@, %d values: NumberParser %.1f ns/number, strtod %.1f ns/number (min of runs); %d different results",
                         kind.name, numberCount, ours.minimum / n * 1e9, libc.minimum / n * 1e9, mismatches))
        }
        print("CPU: \(Self.cpuModel())")
    }

    /// Sorting `levelCount` labels (`u0000123`-style ids and short words) in R's order: ``LevelOrder``
    /// against Foundation's `compare(_:options:range:locale:)` (ICU collation, root locale), and
    /// whether ICU gives R's order on the label sets LevelOrderTests checks.
    func levelOrdering() throws {
        var generator = SplitMix64(seed: 11)
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-. ")
        let labels = (0..<levelCount).map { i -> String in
            if i % 2 == 0 { return "u" + String(format: "%07d", Int(generator.next() % 10_000_000)) }
            return String((0..<(3 + Int(generator.next() % 6))).map { _ in letters[Int(generator.next() % UInt64(letters.count))] })
        }
        let root = Locale(identifier: "root")
        let ours = Harness.measure(seconds: seconds, minimumSamples: 3) { _ = LevelOrder.sortedIndices(labels) }
        let icu = Harness.measure(seconds: seconds, minimumSamples: 3) {
            _ = labels.indices.sorted { labels[$0].compare(labels[$1], options: [], range: nil, locale: root) == .orderedAscending }
        }
        print(String(format: "level order, %d labels: LevelOrder %.2f ms, ICU compare (root locale) %.2f ms (min of runs)",
                     levelCount, ours.minimum * 1e3, icu.minimum * 1e3))
        for expected in Self.rOrders {
            let sorted = expected.reversed().sorted { $0.compare($1, options: [], range: nil, locale: root) == .orderedAscending }
            let same = sorted == expected
            print("  ICU \(same ? "=" : "≠") R: \(same ? expected.joined(separator: " ") : sorted.map(\.debugDescription).joined(separator: " "))")
        }
    }

    /// Orders printed by R (`sort`, ICU root collation), from LevelOrderTests.
    static let rOrders: [[String]] = [
        ["_", "-1", "~", "1", "a", "A", "ä", "a b", "a_b", "a-b", "a.b", "a1", "a10", "a9", "ab", "aB",
         "Ab", "AB", "b", "e", "é", "f", "z", "Z"],
        ["_", "-", ",", ";", ":", "!", "?", ".", "'", "\"", "(", ")", "[", "]", "{", "}", "@", "*",
         "/", "\\", "&", "#", "%", "`", "^", "+", "<", "=", ">", "|", "~", "$"],
        ["\t", "\n", " ", "_", "0", "a"],
        ["cote", "Cote", "COTE", "coté", "côte", "côté"],
        ["a", "A", "à", "À", "å", "Å"],
        ["ss", "sS", "Ss", "SS", "ß", "ssa", "ßa", "ssb"],
        ["ae", "Ae", "AE", "aé", "æ", "Æ", "aeb", "æb", "aec"],
        ["da", "đa", "ða", "db", "dz", "ib", "iz", "ıa", "ja", "ł", "la", "lz", "ma", "nz", "ŋa",
         "oa", "øa", "ob", "oz", "za", "þ"],
        ["fi", "ﬁ", "fj", "ha", "ħa", "hb", "ij", "ĳ", "ik"],
        ["x\ty", "x y", "x\u{A0}y", "x_y", "xy"],
        ["–", "!", "¡", "…", "«", "´", "¨", "°", "©", "±", "÷", "×", "¬", "$", "£", "¥", "€", "0",
         "½", "²", "3", "4", "a", "z", "α", "β", "а", "я"],
    ]

    static func cpuModel() -> String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
}
