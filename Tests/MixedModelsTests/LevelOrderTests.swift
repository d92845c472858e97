import Testing
@testable import MixedModels

/// R's level order. Every expected order here is R's own output (`Rscript -e 'print(sort(c(…)))'`,
/// R with ICU, `icuGetCollate()` = "root").
@Suite struct LevelOrderTests {
    private func sortedByR(_ labels: [String]) -> [String] {
        labels.sorted(by: LevelOrder.rLevelOrder)
    }

    /// Each expected order must come back from several shuffles of it.
    private func expectROrder(_ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        var generator = SplitMix64(seed: UInt64(expected.count))
        for _ in 0..<5 {
            #expect(sortedByR(expected.shuffled(using: &generator)) == expected, sourceLocation: sourceLocation)
        }
    }

    @Test func briefExample() {
        let input = ["a-b", "ab", "a b", "a_b", "Ab", "aB", "AB", "a.b", "a1", "a10", "a9", "é", "e", "f",
                     "Z", "z", "-1", "1", "_", "~", "a", "A", "ä", "b"]
        let r = ["_", "-1", "~", "1", "a", "A", "ä", "a b", "a_b", "a-b", "a.b", "a1", "a10", "a9", "ab", "aB",
                 "Ab", "AB", "b", "e", "é", "f", "z", "Z"]
        #expect(sortedByR(input) == r)
        expectROrder(r)
    }

    @Test func asciiPunctuationOrder() {
        expectROrder(["_", "-", ",", ";", ":", "!", "?", ".", "'", "\"", "(", ")", "[", "]", "{", "}", "@", "*",
                      "/", "\\", "&", "#", "%", "`", "^", "+", "<", "=", ">", "|", "~", "$"])
        expectROrder(["\t", "\n", " ", "_", "0", "a"])
    }

    /// 380 random ASCII strings (letters, digits, punctuation, spaces) in the order R gave.
    @Test func randomAsciiStringsAsR() {
        expectROrder(Self.rSortedAscii)
    }

    @Test func accentsCaseAndSpecialLetters() {
        expectROrder(["cote", "Cote", "COTE", "coté", "côte", "côté"])
        expectROrder(["a", "A", "à", "À", "å", "Å"])
        expectROrder(["ss", "sS", "Ss", "SS", "ß", "ssa", "ßa", "ssb"])
        expectROrder(["ae", "Ae", "AE", "aé", "æ", "Æ", "aeb", "æb", "aec"])
        expectROrder(["da", "đa", "ða", "db", "dz", "ib", "iz", "ıa", "ja", "ł", "la", "lz", "ma", "nz", "ŋa",
                      "oa", "øa", "ob", "oz", "za", "þ"])
        expectROrder(["fi", "ﬁ", "fj", "ha", "ħa", "hb", "ij", "ĳ", "ik"])
        // ICU's order of accents: acute, grave, breve, circumflex, caron, ring, diaeresis, …
        expectROrder(["a\u{301}", "a\u{300}", "a\u{306}", "a\u{302}", "a\u{30C}", "a\u{30A}", "a\u{308}",
                      "a\u{30B}", "a\u{303}", "a\u{307}", "a\u{327}", "a\u{328}", "a\u{304}", "a\u{323}", "a\u{331}"])
        expectROrder(["x\ty", "x y", "x\u{A0}y", "x_y", "xy"])
        expectROrder(["–", "!", "¡", "…", "«", "´", "¨", "°", "©", "±", "÷", "×", "¬", "$", "£", "¥", "€", "0",
                      "½", "²", "3", "4", "a", "z", "α", "β", "а", "я"])
        expectROrder(["_", "-", "–", "—", "!", "¡", "'", "\"", "«", "»", "§", "¶", "@", "&", "#", "%", "`", "´",
                      "^", "¨", "°", "©", "®", "+", "±", "÷", "×", "<", "=", ">", "¬", "|", "~", "$", "€"])
    }

    @Test func canonicallyEquivalentSpellingsSortTogether() {
        // Precomposed and decomposed é are equal to ICU; both sort between e and è.
        // (Swift's == on String is canonical equivalence, so the spelling does not matter here.)
        let sorted = sortedByR(["ë", "e\u{300}", "é", "e", "è", "e\u{301}", "ê"])
        #expect(sorted == ["e", "é", "é", "è", "è", "ê", "ë"])
    }

    @Test func orderIsStrictAndTotal() {
        let labels = ["a", "A", "á", "a\u{301}", "a ", "a\u{1}", "", "1", "01", "１", "\u{FFFD}", "\u{10FFFF}"]
        for i in labels.indices {
            #expect(!LevelOrder.rLevelOrder(labels[i], labels[i]))
            for j in labels.indices where j != i {
                #expect(LevelOrder.rLevelOrder(labels[i], labels[j]) != LevelOrder.rLevelOrder(labels[j], labels[i]),
                        "\(labels[i].debugDescription) vs \(labels[j].debugDescription)")
            }
        }
    }

    @Test func numericLevelsSortNumerically() {
        let labels = ["1000", "308", "309", "1e2", "-5", "1.0", "1", "Inf", "-Inf"]
        let order = LevelOrder.sortedIndices(labels).map { labels[$0] }
        #expect(order == ["-Inf", "-5", "1", "1.0", "1e2", "308", "309", "1000", "Inf"])
    }

    @Test func mixedLevelsSortAsText() {
        let labels = ["10", "9", "x", "1"]
        #expect(LevelOrder.sortedIndices(labels).map { labels[$0] } == ["1", "10", "9", "x"])
        // "NaN" is not orderable as a number, so the levels sort as text.
        let withNaN = ["2", "10", "NaN"]
        #expect(LevelOrder.sortedIndices(withNaN).map { withNaN[$0] } == ["10", "2", "NaN"])
        #expect(LevelOrder.sortedIndices([]).isEmpty)
    }

    static let rSortedAscii: [String] = [
        " ", " {", " Rm2!4", "_?3", "-s<m", "-VB", ",I", ";)d", ":JK6w", "?", "?evXKq", ".S", "'",
        "'OT", "\"", "\"b", "\"gv7#", "\"i", "\"Jt7T", "(", "(y83z", "(z", ")", ")}", ")Fu4S.",
        ")Glh", ")j2^g", ")mf6m", "[0l", "[d~", "[FeQ2!", "]-p0xv", "{", "@", "@<z3Tt", "@tP",
        "*l2/I", "/", "/Jfi", "/n2k/", "/NGdk0", "\\7-23", "&Pujq", "#", "%1bJ5", "`", "`{.",
        "``3>OB", "`2", "`s", "+kas", "+Mb", "+n", "<nzfSa", "=kAUNI", "=u$", ">", ">l", ">z",
        ">zr", "|<", "|cuN", "|Ir6", "~", "~9Hu", "$", "$35y", "$fzxh", "$MxwH", "0", "0[", "08",
        "0M6?[", "0zwD?e", "1", "1{", "1@Cx{4", "1yc?", "2n@", "2u", "3", "3[", "3@FX", "32wMG",
        "3bO7M;", "3Fv00", "3ic8", "3OZx", "4", "4?nPa", "46", "48eoN", "4fL", "4pK", "4Q'wRF",
        "5", "5@sa6:", "5B", "5KNEc@", "5ksw<", "5m ", "68V", "6iF16", "6u)rf", "7:p3%9", "7/",
        "7k~Bj", "8", "8`\"", "833o", "8d8DM7", "8LRnjz", "9", "91D", "9J", "9JYXd", "9O",
        "9OWd$w", "9p9gh", "A)e4", "A{", "Ahky", "aKc", "aKmmjf", "aOop0l", "Av", "AvZ", "b", "b ",
        "b{", "bC/\\", "bE", "bEv", "bjBgK", "bQhf", "bR", "bX8", "bzj", "C[IX", "C6.", "c7_Swv",
        "CAP", "CJq", "ckQ0Vo", "CQZ", "cSW^", "cyc7BI", "D\"f'", "d\"oU", "D{", "D0j", "D4B`",
        "D6l", "d9w9yw", "DHc", "DI", "dj_$n", "Dxqp|1", "DxT", "e", "E'~lVH", "E#", "E^1", "e>)7",
        "e~G6R", "EBUV", "eEa9Oh", "eJ", "EyHw", "F", "f Fs6", "f|", "Fl3@", "ft", "Fu'", "fZg^\"",
        "g", "G", "G1", "g7", "gk8", "gLs;]", "h", "H+#3", "h4i", "H5", "H995n", "hA", "HC~", "hx",
        "i", "I!cTl", "i1", "i9X", "icm", "iEt", "ih0}l", "iL6", "IUOxB", "Iwa16", "IXk", "j",
        "JjH`uj", "jq9s", "jqLwy9", "k!i", "k}BTC", "K/", "K5Z1\\", "ka", "Kby", "kE32", "kfz",
        "kk:g", "kSX", "kyF5", "l", "L", "l ", "L:9a", "L{", "l#", "l45x:", "L5temb", "l73[",
        "lB8", "lfirGj", "lG", "lg2oys", "lltk", "Lmiza4", "lQ'", "lRr", "ly", "Lyok", "m", "M",
        "M&{j", "mAqu", "mC", "mk", "Mw", "n;s", "N)%b4J", "N}cT", "n@", "Ngo9cx", "Nj", "No9j",
        "Np", "nzUYKb", "nZz!=", "O", "O2x7M", "oaN&b", "OD", "ODf|h", "oi F3#", "OO B", "OSg",
        "OudL", "P", "p)", "pbo7-s", "PDhwfY", "pEn", "Pi?6", "pn9j", "pq7~F2", "pvVN", "pxu.",
        "pzQj", "q", "Q", "q-casi", "q,p", "q2TH80", "Q7", "q7J", "q9ag!", "qK2", "qL", "QLL",
        "QNq", "Qod", "r", "R", "r.,1", "R{SH?", "r|C", "R3", "Rg", "rKk", "S", "s,E6tj", "s9teIy",
        "sCEs", "SE", "skRe", "snkc", "sSj", "Syx=t", "T", "TA", "Td1H2T", "td5", "TemCB", "Tez;",
        "Tja-", "tMH", "tn5", "Toak8e", "tqNdzn", "TuKR2M", "u~p9fc", "u27<MF", "UFaIJ", "UGyFE",
        "ui5L", "UM", "Umo4", "Ut8u9", "Uu", "V", "v^orx", "VA", "vB", "vF_s3l", "Vf7w69", "vg}",
        "vP@8", "vQpz4e", "vtv-q&", "vU", "vx9J", "w", "W=Yc", "Wb", "wbpgj", "wd", "wd'(K", "we",
        "WEzN&Y", "Wi", "Ws", "WsB", "X'+CT1", "X#", "x3rRKE", "XK", "XlaWpv", "xTx]}q", "Xvy[",
        "xx4Rfk", "Y", "Y\"3", "y/C", "Y^lvpn", "yF]nCt", "YkVbp", "YM1b?", "yn0=f!", "yoNwq",
        "ySiA", "ytHlh", "yY", "z", "Z", "z):8", "z{n|", "z%", "zc#avi", "zHAxeD", "zi", "Zl&CF",
        "Zq6arb", "zR0IQ", "zS1", "zt", "zYl",
    ]
}
