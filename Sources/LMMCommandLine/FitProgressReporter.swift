import Foundation
import MixedModels

/// Progress of the exact (Newton, BOBYQA) and matrix-free fits on standard error, from the
/// library's ``FitStep``s (issues 14 and 16).
///
/// - `--quiet`: nothing.
/// - A fit is shown once it has run for ``patience`` seconds (a fit that ends sooner says
///   nothing; one that runs longer is expected to take more than a few seconds); matrix-free
///   iterations from the first.
/// - Standard error a terminal: one line per Newton or matrix-free iteration (criterion,
///   change, elapsed, time left), and the optimizer's evaluations on one line redrawn in place.
/// - Otherwise (logs): one line per step, `key=value` fields after the step:
///   `lmm: step 3 newton: criterion=2959149.352240 change=1.2e-03 elapsed=12.3s remaining=8s`
///   (`remaining=unknown` before the changes shrink), then ` | detail` when there is one.
final class FitProgressReporter: @unchecked Sendable {
    enum Mode: Sendable { case quiet, terminal, log }

    /// Seconds a fit runs before its steps are shown.
    static let defaultPatience = 2.0

    private let lock = NSLock()
    private let mode: Mode
    private let patience: Double
    private let criterionName: String
    private let write: @Sendable (String) -> Void
    private var drawn = false
    private var lastDraw = -Double.infinity

    /// - Parameters:
    ///   - criterionName: what `criterion` is (`REML criterion`, `deviance`), for the terminal.
    ///   - write: where the text goes (standard error).
    init(mode: Mode, criterionName: String, patience: Double = FitProgressReporter.defaultPatience,
         write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.mode = mode
        self.patience = patience
        self.criterionName = criterionName
        self.write = write
    }

    /// Quiet with `--quiet`, else terminal or log by standard error.
    convenience init(quiet: Bool, criterion: Criterion) {
        self.init(mode: quiet ? .quiet : (isatty(STDERR_FILENO) != 0 ? .terminal : .log),
                  criterionName: criterion == .reml ? "REML criterion" : "deviance")
    }

    func report(_ step: FitStep) {
        lock.withLock {
            guard mode != .quiet, step.method == "iterative" || step.elapsed >= patience else { return }
            switch mode {
            case .quiet: return
            case .log: write(Self.logLine(step) + "\n")
            case .terminal:
                let text = terminalLine(step)
                if step.method == "newton" || step.method == "iterative" {
                    clearLine()
                    write(text + "\n")
                } else if step.elapsed - lastDraw >= 0.1 {
                    lastDraw = step.elapsed
                    write("\r\u{1B}[K" + text)
                    drawn = true
                }
            }
        }
    }

    /// Clears a line drawn in place.
    func finish() {
        lock.withLock { clearLine() }
    }

    /// The log line of a step (no newline).
    static func logLine(_ step: FitStep) -> String {
        var fields = ["lmm: step \(step.step) \(step.method):"]
        if let criterion = step.criterion { fields.append(String(format: "criterion=%.6f", criterion)) }
        fields.append(String(format: "change=%.3e", step.change))
        fields.append(String(format: "elapsed=%.1fs", step.elapsed))
        fields.append(step.secondsRemaining.map { String(format: "remaining=%.0fs", $0) } ?? "remaining=unknown")
        return fields.joined(separator: " ") + (step.detail.isEmpty ? "" : " | " + step.detail)
    }

    private func terminalLine(_ step: FitStep) -> String {
        var text = "lmm: \(step.method) \(step.step):"
        if let criterion = step.criterion { text += String(format: " %@ %.6f,", criterionName, criterion) }
        text += String(format: " change %.2e, %.1f s", step.change, step.elapsed)
        if let remaining = step.secondsRemaining { text += String(format: ", about %.0f s left", remaining) }
        if !step.detail.isEmpty { text += "; " + step.detail }
        return text
    }

    private func clearLine() {
        if drawn { write("\r\u{1B}[K") }
        drawn = false
    }
}
