import Testing
@testable import MixedModels

@Suite struct LevelDictionaryTests {
    private func code(_ dictionary: LevelDictionary, _ text: String) -> Int32? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { dictionary.code(for: $0.baseAddress!, length: $0.count) }
    }

    @Test func codesInOrderOfFirstAppearance() {
        let dictionary = LevelDictionary()
        #expect(code(dictionary, "b") == 0)
        #expect(code(dictionary, "a") == 1)
        #expect(code(dictionary, "b") == 0)
        #expect(code(dictionary, "c") == 2)
        #expect(dictionary.count == 3)
        #expect(dictionary.labels() == ["b", "a", "c"])
    }

    /// Levels whose key words coincide ("a", "aa", "aaa" all read as a, a, a) or that share their
    /// first 8 bytes must stay apart.
    @Test func similarLevelsStayDistinct() {
        let dictionary = LevelDictionary()
        let labels = ["a", "aa", "aaa", "aaaa", "abcdefgh", "abcdefghi", "abcdefghj", "abcdefghij", "abcdefgh12345678",
                      "abcdefgh12345679", "x y", "x\u{0}y", "é", "e\u{301}"]
        for (index, label) in labels.enumerated() { #expect(code(dictionary, label) == Int32(index), "\(label)") }
        for (index, label) in labels.enumerated() { #expect(code(dictionary, label) == Int32(index), "\(label)") }
        #expect(dictionary.count == labels.count)
        #expect(dictionary.labels() == labels)
    }

    @Test func growsThroughManyLevels() {
        let dictionary = LevelDictionary()
        let labels = (0..<50_000).map { "level-\($0 * 7919 % 50_000)" }
        for (index, label) in labels.enumerated() { #expect(code(dictionary, label) == Int32(index)) }
        var generator = SplitMix64(seed: 5)
        for _ in 0..<20_000 {
            let index = Int.random(in: 0..<labels.count, using: &generator)
            #expect(code(dictionary, labels[index]) == Int32(index))
        }
        #expect(dictionary.count == labels.count)
        #expect(dictionary.label(12_345) == labels[12_345])
    }

    @Test func batchedLookupsAgreeWithSingleOnes() {
        let dictionary = LevelDictionary()
        for text in ["u1", "u22", "u333", "u1"] {
            let bytes = Array(text.utf8)
            bytes.withUnsafeBufferPointer { buffer in
                let (hash, _) = dictionary.hashAndTouch(buffer.baseAddress!, length: buffer.count)
                #expect(dictionary.code(for: buffer.baseAddress!, length: buffer.count, hash: hash)
                        == dictionary.code(for: buffer.baseAddress!, length: buffer.count))
            }
        }
        #expect(dictionary.labels() == ["u1", "u22", "u333"])
    }
}
