#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fast 64-bit fingerprint of a file's bytes (not cryptographic): the bytes are read in
/// 4 MiB chunks and folded eight at a time with a multiply-xorshift mix (the finalizer of
/// MurmurHash3/SplitMix), the tail zero-padded, the length mixed in last. It tells "the same
/// data file" from "another file" at a few GB/s; it does not resist deliberate collisions.
enum FileHash {
    /// The fingerprint of the file at `path`, with its size.
    static func fingerprint(path: String) throws -> (bytes: Int, hash: String) {
        let name = FileIO.fileName(path)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw InputError("cannot open: \(FileIO.lastError)", file: name) }
        defer { close(fd) }
        let capacity = 4 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity + 8, alignment: 8)
        defer { buffer.deallocate() }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var total = 0
        while true {
            var filled = 0
            while filled < capacity {
                let n = read(fd, buffer + filled, capacity - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw InputError("cannot read: \(FileIO.lastError)", file: name)
                }
                if n == 0 { break }
                filled += n
            }
            if filled == 0 { break }
            // Zero-pad the tail to a whole word; the length mixed in at the end separates
            // files that differ only by trailing zero bytes.
            let words = (filled + 7) / 8
            for k in filled..<(words * 8) { buffer.storeBytes(of: 0, toByteOffset: k, as: UInt8.self) }
            for w in 0..<words {
                let word = buffer.loadUnaligned(fromByteOffset: w * 8, as: UInt64.self)
                state = mix(state ^ word) &+ UInt64(truncatingIfNeeded: w)
            }
            total += filled
            if filled < capacity { break }
        }
        state = mix(state ^ UInt64(truncatingIfNeeded: total))
        let hex = String(state, radix: 16)
        return (total, String(repeating: "0", count: 16 - hex.count) + hex)
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }
}
