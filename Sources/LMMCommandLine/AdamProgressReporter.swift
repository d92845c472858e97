import Foundation
import MixedModels

/// Progress of a streaming fit on standard error: a bar redrawn in place when standard error is
/// a terminal (epoch, rows/s, objective, ETA), one plain line per epoch otherwise (logs).
final class AdamProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = 0.0
    private var drawn = false
    /// The last epoch summary, shown on the bar during the next epoch.
    private var objective: Double?
    private var remaining: Double?

    func note(_ text: String) {
        lock.withLock {
            clearLine()
            write("lmm: \(text)\n")
        }
    }

    /// The statistics pass (rows read so far).
    func statistics(rows: Int, of total: Int) {
        lock.withLock {
            guard terminal, throttle() else { return }
            draw(String(format: "statistics %@ %5.1f%%", bar(Double(rows) / Double(max(total, 1))), 100 * Double(rows) / Double(max(total, 1))))
        }
    }

    func report(_ progress: AdamProgress) {
        lock.withLock {
            let fraction = Double(progress.rowsDone) / Double(max(progress.rowCount, 1))
            if progress.epochFinished {
                objective = progress.objective
                remaining = progress.secondsRemaining
                let components = progress.varcorr.filter { $0.var2 == nil }.map { entry in
                    "\(entry.grp)\(entry.var1.map { " " + $0 } ?? "") \(String(format: "%.5g", entry.vcov))"
                }.joined(separator: "; ")
                clearLine()
                write(String(format: "lmm: adam epoch %d: %.3gM rows/s, objective %.10g, change %.3g; %@%@\n",
                             progress.epoch, progress.rowsPerSecond / 1e6, progress.objective ?? .nan, progress.change ?? .nan,
                             components, remaining.map { String(format: "; ETA %.0f s", $0) } ?? ""))
                return
            }
            guard terminal, throttle() else { return }
            let label = progress.phase == .final ? "final pass" : "epoch \(progress.epoch)/\(progress.maxEpochs)"
            let epochLeft = (1 - fraction) * Double(progress.rowCount) / max(progress.rowsPerSecond, 1)
            let eta = remaining.map { String(format: " ETA %.0f s", $0 + epochLeft) } ?? ""
            draw(String(format: "%@ %@ %5.1f%% %6.2fM rows/s%@%@", label, bar(fraction), 100 * fraction,
                        progress.rowsPerSecond / 1e6, objective.map { String(format: " objective %.6g", $0) } ?? "", eta))
        }
    }

    func finish() {
        lock.withLock { clearLine() }
    }

    // MARK: Drawing

    /// At most ten redraws a second.
    private func throttle() -> Bool {
        let now = Date().timeIntervalSince1970
        guard now - lastDraw >= 0.1 else { return false }
        lastDraw = now
        return true
    }

    private func bar(_ fraction: Double) -> String {
        let width = 24, filled = Int((max(0, min(1, fraction)) * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    private func draw(_ text: String) {
        write("\r\u{1B}[K" + text)
        drawn = true
    }

    private func clearLine() {
        if drawn { write("\r\u{1B}[K") }
        drawn = false
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
