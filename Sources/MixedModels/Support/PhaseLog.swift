import Foundation

/// Wall-clock timing of the phases of a run, printed to standard error when the environment
/// variable `LMM_TIMING` is set (for profiling; off by default), with the process's resident
/// memory at the mark and its peak so far (Linux: `VmRSS` and `VmHWM` of /proc/self/status).
package enum PhaseLog {
    package static let enabled = ProcessInfo.processInfo.environment["LMM_TIMING"] != nil
    nonisolated(unsafe) private static var last = DispatchTime.now().uptimeNanoseconds

    /// Reports the time since the previous mark under `name`.
    package static func mark(_ name: @autoclosure () -> String) {
        guard enabled else { return }
        let previous = last   // read first: the initial value is taken lazily, on first use
        let now = DispatchTime.now().uptimeNanoseconds
        let (resident, peak) = memory()
        FileHandle.standardError.write(Data(String(format: "[timing] %-28@ %9.2f ms  rss %6d MB  peak %6d MB\n", name() as NSString,
                                                   (Double(now) - Double(previous)) / 1e6, resident, peak).utf8))
        last = now
    }

    /// Resident and peak resident memory in MB (0 where /proc is not there).
    static func memory() -> (Int, Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
                  let kB = line.split(separator: " ").compactMap({ Int($0) }).first else { return 0 }
            return kB / 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }
}
