#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Maps the bytes of factor fields to provisional codes 0, 1, 2, … in order of first appearance.
///
/// Built for the CSV hot loop: a lookup of a level already seen allocates nothing and does not
/// create a `String`. Level bytes live back to back in one arena. The open-addressing table
/// (linear probing, load ≤ 1/2) has 16-byte slots holding a key word (the first bytes of the
/// level, see ``keyWord(_:_:)``), the length, 16 bits of the hash and the code. Factor levels are
/// mostly ≤ 8 bytes ("u12345", "308"), and then a lookup touches one slot and nothing else:
/// with 100k levels the table is far larger than L2, and every extra memory access per field
/// (code → offset → arena) would be one more cache miss. Longer levels compare the rest of
/// their bytes with the arena. Large tables ask for 2 MiB pages, and the reader looks fields up
/// a batch at a time (``hashAndTouch(_:length:)`` first), so the cache misses of random
/// lookups overlap.
///
/// A class with manually managed storage rather than a struct of arrays: the reader mutates it
/// for every field, and arrays inside would pay uniqueness checks (or copies) on each write.
final class LevelDictionary {
    /// Number of distinct levels so far.
    private(set) var count = 0

    /// Level bytes, back to back.
    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCount = 0
    private var arenaCapacity: Int
    /// Level `i` is `arena[starts[i] ..< starts[i + 1]]`; `starts` has `count + 1` entries.
    private var starts: UnsafeMutablePointer<Int>
    private var startsCapacity: Int

    /// One slot of the table. `meta` is 0 for an empty slot; otherwise its low 32 bits are
    /// code + 1, bits 32–47 the length (saturated at 0xFFFF) and bits 48–63 the hash's top bits.
    private struct Slot {
        var key: UInt64
        var meta: UInt64
    }

    private var slots: UnsafeMutablePointer<Slot>
    private var mask: Int

    private var hashes: UnsafeMutablePointer<UInt64>
    private var hashCapacity = 0
    private var touchSink: UInt64 = 0

    /// Largest number of levels: codes are `Int32`, and `-1` means missing.
    static let maximumCount = Int(Int32.max)

    init() {
        arenaCapacity = 4096
        arena = .allocate(capacity: arenaCapacity)
        startsCapacity = 256
        starts = .allocate(capacity: startsCapacity)
        starts[0] = 0
        let slotCount = 256
        slots = Self.allocateSlots(slotCount)
        mask = slotCount - 1
        hashes = .allocate(capacity: 0)
    }

    deinit {
        hashes.deallocate()
        arena.deallocate()
        starts.deallocate()
        free(slots)
    }

    /// The code of the level spelled by `length` bytes at `bytes`, adding it if new.
    /// Returns `nil` only when ``maximumCount`` levels exist already and this one is new.
    @inline(__always)
    func code(for bytes: UnsafePointer<UInt8>, length: Int) -> Int32? {
        code(for: bytes, length: length, hash: Self.hash(bytes, length, key: Self.keyWord(bytes, length)))
    }

    // MARK: Batched lookups

    /// Scratch space for a batch's hashes (see ``hashAndTouch(_:length:)``).
    func hashBuffer(capacity: Int) -> UnsafeMutablePointer<UInt64> {
        if capacity > hashCapacity {
            hashes.deallocate()
            hashCapacity = capacity
            hashes = .allocate(capacity: capacity)
        }
        return hashes
    }

    /// The hash of a level, and the table slot where its lookup will start, loaded into the
    /// cache. Hashing a whole batch this way before looking any of it up lets the slots' cache
    /// misses overlap. (Swift has no prefetch instruction; the caller sums the returned `slot`
    /// words and passes the sum to ``keepAlive(_:)``, so the optimizer cannot drop the loads.)
    @inline(__always)
    func hashAndTouch(_ bytes: UnsafePointer<UInt8>, length: Int) -> (hash: UInt64, slot: UInt64) {
        let hash = Self.hash(bytes, length, key: Self.keyWord(bytes, length))
        return (hash, slots[Int(truncatingIfNeeded: hash) & mask].meta)
    }

    /// See ``hashAndTouch(_:length:)``.
    func keepAlive(_ touched: UInt64) {
        touchSink &+= touched
    }

    /// ``code(for:length:)`` with the hash already computed.
    @inline(__always)
    func code(for bytes: UnsafePointer<UInt8>, length: Int, hash: UInt64) -> Int32? {
        let key = Self.keyWord(bytes, length)
        let expected = Self.metaHigh(hash: hash, length: length)
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot.meta == 0 { return insert(bytes, length: length, key: key, hash: hash, slot: index) }
            if slot.key == key, slot.meta >> 32 == expected {
                let code = Int(truncatingIfNeeded: slot.meta & 0xFFFF_FFFF) - 1
                if length <= 8 || restMatches(code, bytes, length) { return Int32(truncatingIfNeeded: code) }
            }
            index = (index + 1) & mask
        }
    }

    /// The bytes of level `code` (valid until the next insertion).
    func bytes(ofLevel code: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: arena + starts[code], count: starts[code + 1] - starts[code])
    }

    /// Level `code` as a `String` (invalid UTF-8 is repaired with U+FFFD).
    func label(_ code: Int) -> String {
        String(decoding: bytes(ofLevel: code), as: UTF8.self)
    }

    /// Every level as a `String`, in code order.
    func labels() -> [String] {
        (0..<count).map(label)
    }

    /// The levels in R's order (``LevelOrder``): `rank[code]` is the position of provisional
    /// code `code`, `labels` the distinct labels in that order.
    ///
    /// Distinct bytes can still make equal Strings (canonically equivalent spellings such as "é"
    /// and "e\u{301}"; invalid UTF-8 repaired to U+FFFD): R keeps them apart, so the CSV reader
    /// and the conversion refuse both (``UTF8Validation``, ``equivalentLabels()``) before they get
    /// here; were they to, they would become one level, so that a label identifies one level.
    func sortedLevels() -> (rank: [Int32], labels: [String]) {
        let labels = labels()
        let order = LevelOrder.sortedIndices(labels)
        let mayCollide = (0..<count).contains { bytes(ofLevel: $0).contains { $0 >= 0x80 } }
        var rank = [Int32](repeating: 0, count: labels.count)
        var sortedLabels: [String] = []
        sortedLabels.reserveCapacity(labels.count)
        var seen: [String: Int32] = [:]
        for old in order {
            let label = labels[old]
            if mayCollide, let existing = seen[label] {
                rank[old] = existing
                continue
            }
            rank[old] = Int32(sortedLabels.count)
            if mayCollide { seen[label] = Int32(sortedLabels.count) }
            sortedLabels.append(label)
        }
        return (rank, sortedLabels)
    }

    /// The first two levels whose bytes differ but whose Strings are equal (canonically
    /// equivalent Unicode spellings, such as "é" as one code point and as "e" + U+0301), in
    /// code order; nil when every label is its own String. R compares labels byte by byte and
    /// would keep such levels apart, while this project's outputs key levels by String, so the
    /// readers refuse the pair rather than merge it. Only possible with non-ASCII bytes.
    func equivalentLabels() -> (first: [UInt8], second: [UInt8])? {
        guard (0..<count).contains(where: { bytes(ofLevel: $0).contains { $0 >= 0x80 } }) else { return nil }
        var seen: [String: Int] = [:]
        for code in 0..<count {
            let label = label(code)
            if let earlier = seen[label] { return (Array(bytes(ofLevel: earlier)), Array(bytes(ofLevel: code))) }
            seen[label] = code
        }
        return nil
    }

    // MARK: Private

    /// Bytes 8 ..< length of a level longer than 8 bytes (the key word holds the first 8).
    private func restMatches(_ code: Int, _ bytes: UnsafePointer<UInt8>, _ length: Int) -> Bool {
        let start = starts[code]
        guard starts[code + 1] - start == length else { return false }
        let stored = arena + start
        for k in 8..<length where stored[k] != bytes[k] { return false }
        return true
    }

    @inline(never)
    private func insert(_ bytes: UnsafePointer<UInt8>, length: Int, key: UInt64, hash: UInt64, slot: Int) -> Int32? {
        guard count < Self.maximumCount else { return nil }
        let code = count
        if arenaCount + length > arenaCapacity {
            let capacity = max(2 * arenaCapacity, arenaCount + length)
            arena = Self.grow(arena, used: arenaCount, to: capacity)
            arenaCapacity = capacity
        }
        (arena + arenaCount).update(from: bytes, count: length)
        arenaCount += length
        if code + 2 > startsCapacity {
            starts = Self.grow(starts, used: code + 1, to: 2 * startsCapacity)
            startsCapacity *= 2
        }
        starts[code + 1] = arenaCount
        count += 1
        slots[slot] = Slot(key: key, meta: Self.metaHigh(hash: hash, length: length) << 32 | UInt64(code + 1))
        if 2 * count > mask + 1 { rehash() }
        return Int32(code)
    }

    /// Doubles the table and re-inserts every level (keys and hashes recomputed from the arena).
    private func rehash() {
        let slotCount = 2 * (mask + 1)
        free(slots)
        slots = Self.allocateSlots(slotCount)
        mask = slotCount - 1
        for code in 0..<count {
            let bytes = arena + starts[code]
            let length = starts[code + 1] - starts[code]
            let key = Self.keyWord(bytes, length)
            let hash = Self.hash(bytes, length, key: key)
            var index = Int(truncatingIfNeeded: hash) & mask
            while slots[index].meta != 0 { index = (index + 1) & mask }
            slots[index] = Slot(key: key, meta: Self.metaHigh(hash: hash, length: length) << 32 | UInt64(code + 1))
        }
    }

    /// A zeroed table. Large tables go on 2 MiB pages where the kernel offers them: lookups
    /// land on random slots, and with 4 KiB pages nearly each would also miss the TLB.
    private static func allocateSlots(_ count: Int) -> UnsafeMutablePointer<Slot> {
        let bytes = count * MemoryLayout<Slot>.stride
        let hugePage = 2 << 20
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, bytes >= hugePage ? hugePage : 64, bytes) == 0, let memory else {
            fatalError("out of memory for a factor level table of \(count) slots")
        }
        #if os(Linux)
        if bytes >= hugePage { _ = madvise(memory, bytes, MADV_HUGEPAGE) }
        #endif
        memset(memory, 0, bytes)
        return memory.bindMemory(to: Slot.self, capacity: count)
    }

    private static func grow<T>(_ old: UnsafeMutablePointer<T>, used: Int, to capacity: Int) -> UnsafeMutablePointer<T> {
        let new = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        new.moveInitialize(from: old, count: used)
        old.deallocate()
        return new
    }

    /// Bits 32–63 of a slot's `meta`: 16 bits of hash above the saturated length.
    @inline(__always)
    private static func metaHigh(hash: UInt64, length: Int) -> UInt64 {
        (hash >> 48) << 16 | UInt64(truncatingIfNeeded: min(length, 0xFFFF))
    }

    /// Eight bytes that, together with the length, identify a level of at most 8 bytes: the
    /// bytes themselves for 8; two overlapping 4-byte loads for 4–7; first, middle and last
    /// byte for 1–3 (every byte is covered). For longer levels, the first 8 bytes. Reads never
    /// go past `bytes + length`.
    @inline(__always)
    static func keyWord(_ bytes: UnsafePointer<UInt8>, _ length: Int) -> UInt64 {
        let raw = UnsafeRawPointer(bytes)
        if length >= 8 { return raw.loadUnaligned(as: UInt64.self) }
        if length >= 4 {
            let first = UInt64(raw.loadUnaligned(as: UInt32.self))
            let last = UInt64(raw.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self))
            return first | last << 32
        }
        if length > 0 {
            return UInt64(bytes[0]) | UInt64(bytes[length / 2]) << 8 | UInt64(bytes[length - 1]) << 16
        }
        return 0
    }

    /// A fast 64-bit hash (as in wyhash: folded 64×64→128-bit multiplies). For levels of at
    /// most 8 bytes it mixes the key word and length only; longer levels add their other bytes
    /// in 8-byte words and an overlapping last word.
    @inline(__always)
    static func hash(_ bytes: UnsafePointer<UInt8>, _ length: Int, key: UInt64) -> UInt64 {
        var h = mix(key ^ 0xA076_1D64_78BD_642F, 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: length))
        if length > 8 {
            let raw = UnsafeRawPointer(bytes)
            var i = 8
            while i + 8 <= length {
                h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self), 0xE703_7ED1_A0B4_28DB)
                i += 8
            }
            if i < length {
                h = mix(h ^ raw.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self), 0x8EBC_6AF0_9C88_C6E3)
            }
        }
        return h
    }

    @inline(__always)
    private static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }
}
