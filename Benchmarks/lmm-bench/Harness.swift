import Foundation

/// Timing of repeated runs: the minimum (least disturbed by a shared machine) and the median.
struct Timing {
    var samples: [Double]   // seconds
    var minimum: Double { samples.min() ?? .nan }
    var median: Double {
        let sorted = samples.sorted()
        return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
    }
}

enum Harness {
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Runs `body` in batches of `batch` calls until `seconds` have passed (at least `minimumSamples`
    /// batches) and returns per-call times.
    static func measure(batch: Int = 1, seconds: Double = 1, minimumSamples: Int = 5, _ body: () throws -> Void) rethrows -> Timing {
        var samples: [Double] = []
        let start = now()
        while samples.count < minimumSamples || now() - start < seconds {
            let t0 = now()
            for _ in 0..<batch { try body() }
            samples.append((now() - t0) / Double(batch))
        }
        return Timing(samples: samples)
    }

    /// Peak resident set size of this process so far, in bytes (Linux: VmHWM).
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }

    static func format(seconds: Double) -> String {
        if seconds < 1e-3 { return String(format: "%.2f µs", seconds * 1e6) }
        if seconds < 1 { return String(format: "%.2f ms", seconds * 1e3) }
        return String(format: "%.2f s", seconds)
    }
}

extension Harness {
    /// `lmm` and `datagen` beside this `lmm-bench` executable (the commands that run whole
    /// processes need both).
    static func siblingTools() throws -> (lmm: String, datagen: String) {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let lmm = bin.appendingPathComponent("lmm").path, datagen = bin.appendingPathComponent("datagen").path
        for tool in [lmm, datagen] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ValidationErrorText("\(tool) is missing: build all products (swift build -c release)")
        }
        return (lmm, datagen)
    }
}
