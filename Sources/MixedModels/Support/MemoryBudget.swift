import Foundation

/// What a fit may allocate, and a clear stop when it needs more (issue 11, item 12): a fit that
/// runs out of memory half-way aborts in Swift's array allocation (exit 134), and OpenBLAS
/// (0.3.21) spins for ever when it cannot map its per-thread buffers. So the large allocations
/// are estimated before they are made and compared with what the process may still use:
/// the address-space and data limits (`getrlimit`, as `ulimit -v` sets them) less what the
/// process already holds, the cgroup's `memory.max` less `memory.current`, and the
/// system's `MemAvailable`.
enum MemoryBudget {
    /// Address space an OpenBLAS library maps at its first call: its buffer of 128 MB
    /// (measured: the process grows by 127 MB at the first dense call of sleepstudy's fit,
    /// and Debian's OpenBLAS asks for 134,221,824 bytes per thread).
    static let blasBuffer = 128 << 20

    /// Bytes the process may still allocate, or nil when no limit is known.
    static func available() -> Int? {
        var candidates: [Int] = []
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?
            .split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? []
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            candidates.append(Int(clamping: limit.rlim_cur) - (statm.first ?? 0) * page)
        }
        if getrlimit(Int32(RLIMIT_DATA.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            candidates.append(Int(clamping: limit.rlim_cur) - (statm.count > 5 ? statm[5] : 0) * page)
        }
        if let maximum = readInteger("/sys/fs/cgroup/memory.max") {
            candidates.append(maximum - (readInteger("/sys/fs/cgroup/memory.current") ?? 0))
        }
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") {
            candidates.append(kilobytes * 1024)
        }
        return candidates.min().map { max($0, 0) }
    }

    private static func readInteger(_ path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Throws ``InsufficientMemory`` when `bytes` (what `what` needs) exceed `available`.
    /// - Parameter advice: what to try, for the message (the exact engine's by default).
    static func require(_ bytes: Int, for what: String, available: Int? = MemoryBudget.available(),
                        advice: String = InsufficientMemory.exactAdvice) throws {
        guard let available, bytes > available else { return }
        throw InsufficientMemory(needed: bytes, available: available, what: what, advice: advice)
    }

    /// Tries to allocate `bytes` and gives them back: a large buffer about to be made by a
    /// trapping initializer (`[Double](repeating:count:)`) is first checked here, where
    /// failure is an error and not an abort.
    static func probe(_ bytes: Int, for what: String, advice: String = InsufficientMemory.exactAdvice) throws {
        guard bytes >= 64 << 20 else { return }
        // mmap, as glibc's malloc does for a buffer this large, because an optimizing compiler
        // removes a malloc whose pointer is only compared with nil and freed: the probe then
        // always succeeded in release builds.
        let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw InsufficientMemory(needed: bytes, available: available() ?? 0, what: what, advice: advice)
        }
        munmap(pointer, bytes)
    }

    /// The product of `factors`, or `Int.max` when it overflows (a size that cannot be had).
    static func product(_ factors: Int...) -> Int {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return .max }
            result = next
        }
        return result
    }

    /// `count` zeroed doubles aligned to `alignment` bytes, or ``InsufficientMemory`` when
    /// they cannot be had: our own large buffers (free them with `free`).
    static func allocateZeroed(_ count: Int, alignment: Int = 64, for what: String,
                               advice: String) throws -> UnsafeMutablePointer<Double> {
        let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: 8)
        var memory: UnsafeMutableRawPointer?
        guard !overflow, posix_memalign(&memory, alignment, bytes) == 0, let memory else {
            throw InsufficientMemory(needed: overflow ? Int.max : bytes, available: available() ?? 0, what: what, advice: advice)
        }
        memset(memory, 0, bytes)
        return memory.bindMemory(to: Double.self, capacity: max(count, 1))
    }
}

/// A fit needs more memory than the process may use.
struct InsufficientMemory: Error, CustomStringConvertible {
    var needed: Int
    var available: Int
    var what: String
    /// What to try (the message's end).
    var advice: String = InsufficientMemory.exactAdvice

    /// The exact engine's advice: the methods that do not hold a factorization.
    static let exactAdvice = "try --method adam or --method iterative (they do not hold the factorization), or raise the limit (ulimit -v)"

    static func gigabytes(_ bytes: Int) -> String {
        String(format: bytes >= 1 << 30 ? "%.1f GB" : "%.0f MB", Double(bytes) / Double(bytes >= 1 << 30 ? 1 << 30 : 1 << 20))
    }

    var description: String {
        "not enough memory: \(what) needs about \(Self.gigabytes(needed)), \(Self.gigabytes(available)) available; \(advice)"
    }
}
