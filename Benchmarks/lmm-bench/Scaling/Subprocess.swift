import Foundation

/// Runs a program as a child process and measures it the way the scaling table reports it:
/// wall time, peak resident memory (the child's `VmHWM`), exit status, with a time cap.
enum Subprocess {
    struct Outcome {
        var status: Int32
        var seconds: Double
        /// Peak resident set size of the child, in bytes.
        var peakBytes: Int
        var timedOut: Bool
        var stdout: String
        var stderr: String
    }

    /// Runs `executable` with `arguments`; after `cap` seconds the child is killed.
    static func run(_ executable: String, _ arguments: [String], cap: Double) throws -> Outcome {
        let directory = FileManager.default.temporaryDirectory
        let outPath = directory.appendingPathComponent("lmm-bench-\(getpid())-\(UUID().uuidString).out").path
        let errPath = directory.appendingPathComponent("lmm-bench-\(getpid())-\(UUID().uuidString).err").path
        defer { unlink(outPath); unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let start = Harness.now()
        let spawned = posix_spawnp(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw ValidationErrorText("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        var usage = rusage()
        var timedOut = false
        // The peak is the child's own high-water mark, polled from /proc: wait4's ru_maxrss
        // also counts the memory of this process at the time of the spawn (posix_spawn shares
        // its address space with the child until exec), which made later runs inherit it.
        var peakKilobytes = 0
        while true {
            peakKilobytes = max(peakKilobytes, Self.highWaterKilobytes(pid))
            let result = wait4(pid, &status, WNOHANG, &usage)
            if result == pid { break }
            if result < 0 && errno != EINTR { break }
            if Harness.now() - start > cap && !timedOut {
                kill(pid, SIGKILL)
                timedOut = true
            }
            usleep(2_000)
        }
        let seconds = Harness.now() - start
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Outcome(status: exitStatus, seconds: seconds, peakBytes: peakKilobytes * 1024,
                       timedOut: timedOut, stdout: out, stderr: err)
    }
}

extension Subprocess {
    /// `VmHWM` of `/proc/PID/status` (peak resident set size), in kB; 0 when unavailable.
    static func highWaterKilobytes(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
    }
}

/// An error with a message, for failures of the benchmark harness itself.
struct ValidationErrorText: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
