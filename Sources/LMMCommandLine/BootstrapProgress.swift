import Foundation

/// A progress bar for bootstrap replicates on standard error, drawn only when it is a terminal.
final class BootstrapProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) != 0
    private let total: Int
    private let start = Date()
    private var done = 0
    private var lastDraw = 0.0

    init(total: Int) { self.total = total }

    func advance() {
        lock.withLock {
            done += 1
            guard terminal else { return }
            let elapsed = Date().timeIntervalSince(start)
            guard elapsed - lastDraw >= 0.1 || done == total else { return }
            lastDraw = elapsed
            let fraction = Double(done) / Double(max(total, 1))
            let width = 30
            let filled = Int(fraction * Double(width))
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\r\u{1B}[Kbootstrap [%@] %d/%d ETA %.0f s", bar, done, total, eta).utf8))
        }
    }

    func finish() {
        lock.withLock {
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        }
    }
}
