#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Temporary files to remove when the process is stopped by a signal (SIGINT, SIGTERM,
/// SIGHUP, SIGQUIT) or dies of one (an allocation failure's abort, a trap): the writers
/// register their temporary files here, so an interrupted `lmm convert` or adam run leaves none.
///
/// The handler only calls `unlink` on C strings prepared when a file is registered (it is
/// async-signal-safe), then restores the default action and raises the signal again, so the
/// exit status still says which signal stopped the process. Normal exits and thrown errors
/// remove their files themselves (`defer`, `deinit`); this covers what those cannot.
package enum SignalCleanup {
    /// Slots for registered paths: a fixed table, so the handler reads no Swift collection.
    private static let capacity = 64
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        return slots
    }()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var installed = false
    /// The action each signal had before ours (the default, or Swift's crash backtracer), by
    /// signal number: restored by the handler before it raises the signal again.
    nonisolated(unsafe) private static let previous: UnsafeMutablePointer<sigaction> = {
        let table = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
        table.initialize(repeating: sigaction(), count: 65)
        return table
    }()

    /// The signals after which the registered files are removed.
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGILL, SIGTRAP, SIGBUS, SIGFPE]

    /// Removes `path` if the process is stopped by a signal before ``unregister(_:)``.
    /// Returns false when every slot is taken (the file is then not covered).
    @discardableResult
    package static func register(_ path: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        installHandlers()
        for k in 0..<capacity where slots[k] == nil {
            slots[k] = strdup(path)
            return true
        }
        return false
    }

    /// Stops covering `path` (it was renamed into place or removed).
    package static func unregister(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        for k in 0..<capacity {
            guard let entry = slots[k], String(cString: entry) == path else { continue }
            slots[k] = nil
            free(entry)
            return
        }
    }

    /// Whether `path` is registered (for tests).
    package static func isRegistered(_ path: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return (0..<capacity).contains { slots[$0].map { String(cString: $0) == path } ?? false }
    }

    private static func installHandlers() {
        guard !installed else { return }
        installed = true
        for signal in signals {
            var action = sigaction()
            #if canImport(Darwin)
            action.__sigaction_u.__sa_handler = signalCleanupHandler
            #else
            action.__sigaction_handler.sa_handler = signalCleanupHandler
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, nil, &self.previous[Int(signal)])
            let previous = self.previous[Int(signal)]
            // A signal the parent set to be ignored (nohup) stays ignored.
            #if canImport(Darwin)
            let ignored = unsafeBitCast(previous.__sigaction_u.__sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
            #else
            let ignored = unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
            #endif
            if !ignored { sigaction(signal, &action, nil) }
        }
    }

    /// Called by the handler: removes every registered file and restores the signal's previous
    /// action.
    fileprivate static func removeAll(restoring signal: Int32) {
        for k in 0..<capacity {
            if let entry = slots[k] { unlink(entry) }
        }
        if (1...64).contains(signal) { sigaction(signal, previous + Int(signal), nil) }
    }
}

/// The signal handler (a C function pointer: no context).
private func signalCleanupHandler(_ signal: Int32) {
    SignalCleanup.removeAll(restoring: signal)
    // The signal is blocked while this runs: raised again, it is delivered to the previous
    // action (the default ends the process as the signal says) when this returns.
    raise(signal)
}
