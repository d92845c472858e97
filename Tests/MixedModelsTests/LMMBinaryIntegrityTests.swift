import Foundation
import Testing
@testable import MixedModels

/// Issue 11, items 9 and 11: `.lmmbin` checksums, and header fields that cannot trap.
@Suite("lmmbin integrity")
struct LMMBinaryIntegrityTests {
    @Test("CRC-32C matches the standard check values")
    func crcVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum(Array(0..<32).map(UInt8.init)) == 0x46DD_794E)
        // Streaming in pieces of any size gives the same value.
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        let whole = CRC32C.checksum(bytes)
        for cut in [0, 1, 7, 8, 9, 500, 999] {
            let state = bytes[..<cut].withUnsafeBytes { CRC32C.update(CRC32C.initial, $0) }
            #expect(CRC32C.finish(bytes[cut...].withUnsafeBytes { CRC32C.update(state, $0) }) == whole)
        }
    }

    /// A small file: 40 rows, chunks of 16, a factor and two numbers.
    static func sample(in directory: URL) throws -> (String, [UInt8]) {
        let path = directory.appendingPathComponent("s.lmmbin").path
        let writer = try LMMBinaryWriter(path: path, columns: [.factor("g"), .float64("y"), .float64("x")], rowsPerChunk: 16)
        try writer.setLevels(["a", "b", "c"], forColumn: "g")
        for i in 0..<40 { try writer.append(row: [.code(Int32(i % 3)), .float64(Double(i) * 1.5), .float64(Double(i % 7))]) }
        try writer.finish()
        return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test("every single bit flip anywhere in a file is an error (no changed estimate, no crash)")
    func everyBitFlip() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (_, original) = try Self.sample(in: directory)
        #expect(LMMBinaryTests.openingError(directory.appendingPathComponent("s.lmmbin").path) == nil)
        let flipped = directory.appendingPathComponent("f.lmmbin").path
        var accepted: [Int] = []
        for bit in 0..<original.count * 8 {
            var bytes = original
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            try Data(bytes).write(to: URL(fileURLWithPath: flipped))
            if LMMBinaryTests.openingError(flipped) == nil { accepted.append(bit) }
        }
        #expect(accepted.isEmpty, "bit flips accepted: \(accepted.prefix(20))")
    }

    @Test("a chunk whose bytes changed is named; header and footer too")
    func namesThePart() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, original) = try Self.sample(in: directory)
        let dataOffset = LMMBinaryResealing.integer(original, at: 32, size: 8)
        var bytes = original
        bytes[dataOffset + 16 * (4 + 8 + 8) + 70] ^= 0x10    // inside chunk 2
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(LMMBinaryTests.openingError(path)?.message == "chunk 2 of 3 (rows 17 to 32) is corrupt: checksum mismatch")
        bytes = original
        bytes[60] ^= 1    // a column descriptor
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(LMMBinaryTests.openingError(path)?.message.hasPrefix("header checksum mismatch") == true)
        bytes = original
        bytes[bytes.count - 20] ^= 1    // a chunk checksum in the footer
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(LMMBinaryTests.openingError(path)?.message.hasPrefix("footer checksum mismatch") == true)
    }

    @Test("a crafted header (row count 2^63−1, any byte 16–47 changed, checksums resealed) is an error, not a trap")
    func craftedHeader() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, original) = try Self.sample(in: directory)
        let crafted = directory.appendingPathComponent("c.lmmbin").path
        var cases: [[UInt8]] = []
        var huge = original
        for k in 0..<8 { huge[16 + k] = k == 7 ? 0x7F : 0xFF }
        cases.append(huge)
        for byte in 12..<48 {
            for value: UInt8 in [0x00, 0x7F, 0x80, 0xFF] {
                var bytes = original
                bytes[byte] = value
                cases.append(bytes)
            }
        }
        for bytes in cases {
            for sealed in [false, true] {
                let file = sealed ? LMMBinaryResealing.reseal(bytes, rowCount: 40, rowsPerChunk: 16) : bytes
                try Data(file).write(to: URL(fileURLWithPath: crafted))
                if file == original { continue }
                #expect(LMMBinaryTests.openingError(crafted) != nil)
                _ = LMMBinaryReader.truncation(path: crafted)
            }
        }
        // The reproduction from the issue, through the command line: a clean error.
        try Data(huge).write(to: URL(fileURLWithPath: crafted))
        var flipped = original
        flipped[23] ^= 0x80
        let flippedPath = directory.appendingPathComponent("b23.lmmbin").path
        try Data(flipped).write(to: URL(fileURLWithPath: flippedPath))
        for file in [crafted, flippedPath] {
            let result = try CommandRunner.run(["fit", file, "-f", "y ~ x + (1 | g)", "--method", "adam", "-q"])
            #expect(result.status == 1 && !result.signaled, "\(result.stderr)")
            #expect(result.stderr.contains("header checksum mismatch"))
        }
        _ = path
    }

    @Test("a file of format version 1 asks to re-run lmm convert")
    func oldVersion() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, original) = try Self.sample(in: directory)
        var bytes = original
        bytes[8] = 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let result = try CommandRunner.run(["fit", path, "-f", "y ~ x + (1 | g)", "--method", "adam", "-q"])
        #expect(result.status == 1 && result.stderr.contains("format version 1") && result.stderr.contains("re-run `lmm convert`"))
    }

    @Test("fuzz: truncations and random byte runs never crash the reader")
    func fuzz() throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (_, original) = try Self.sample(in: directory)
        let target = directory.appendingPathComponent("z.lmmbin").path
        var generator = SplitMix(seed: 11)
        for length in 0..<original.count {
            try Data(original[..<length]).write(to: URL(fileURLWithPath: target))
            #expect(LMMBinaryTests.openingError(target) != nil)
            _ = LMMBinaryReader.truncation(path: target)
        }
        for _ in 0..<2_000 {
            var bytes = original
            let start = Int(generator.next() % UInt64(bytes.count))
            let run = 1 + Int(generator.next() % 12)
            for k in start..<min(start + run, bytes.count) { bytes[k] = UInt8(truncatingIfNeeded: generator.next()) }
            if generator.next() % 2 == 0 { bytes = LMMBinaryResealing.reseal(bytes, rowCount: 40, rowsPerChunk: 16) }
            try Data(bytes).write(to: URL(fileURLWithPath: target))
            if bytes != original, let error = LMMBinaryTests.openingError(target) { #expect(!error.message.isEmpty) }
            _ = LMMBinaryReader.truncation(path: target)
        }
    }
}

/// A small seeded generator for fuzz tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
