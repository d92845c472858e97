import Foundation

/// Wall-clock timing of the phases of a run, printed to standard error when the environment
/// variable `LMM_TIMING` is set (for profiling; off by default).
package enum PhaseLog {
    package static let enabled = ProcessInfo.processInfo.environment["LMM_TIMING"] != nil
    nonisolated(unsafe) private static var last = DispatchTime.now().uptimeNanoseconds

    /// Reports the time since the previous mark under `name`.
    package static func mark(_ name: @autoclosure () -> String) {
        guard enabled else { return }
        let previous = last   // read first: the initial value is taken lazily, on first use
        let now = DispatchTime.now().uptimeNanoseconds
        FileHandle.standardError.write(Data(String(format: "[timing] %-28@ %9.2f ms\n", name() as NSString, (Double(now) - Double(previous)) / 1e6).utf8))
        last = now
    }
}
