import Foundation
import Testing
@testable import MixedModels

/// Issue 11, items 1–3: outputs never replace a device, FIFO or symbolic link, never overwrite
/// an input or each other, and interrupted runs leave no temporary file.
@Suite("output safety")
struct OutputSafetyTests {
    let sleepstudy = Fixtures.path("sleepstudy.csv")
    let formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

    /// A scratch directory with a copy of sleepstudy.csv.
    func scratch() throws -> (URL, String) {
        let directory = try CommandRunner.temporaryDirectory()
        let data = directory.appendingPathComponent("in.csv").path
        try FileManager.default.copyItem(atPath: sleepstudy, toPath: data)
        return (directory, data)
    }

    func names(_ directory: URL) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
    }

    @Test("--json /dev/null writes through the device and leaves it a device")
    func devNull() throws {
        let result = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--json", "/dev/null", "--ranef", "/dev/null", "-q"])
        #expect(result.status == 0 && !result.signaled, "\(result.stderr)")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }

    @Test("--json - and --json /dev/stdout write the document to standard output")
    func standardOutput() throws {
        for target in ["-", "/dev/stdout"] {
            let result = try CommandRunner.run(["fit", sleepstudy, "-f", formula, "--json", target, "-q"])
            #expect(result.status == 0, "\(result.stderr)")
            let document = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(document?["fixef"] != nil)
        }
    }

    @Test("--json /dev/stdout with standard output redirected to a file writes through the descriptor: the file keeps its inode and gets the document and the summary")
    func standardOutputRedirectedToFile() throws {
        let (directory, _) = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let captured = directory.appendingPathComponent("captured.txt")
        #expect(FileManager.default.createFile(atPath: captured.path, contents: nil))
        var before = stat()
        #expect(stat(captured.path, &before) == 0)
        let process = Process()
        process.executableURL = CommandRunner.productsDirectory.appendingPathComponent("lmm")
        process.arguments = ["fit", sleepstudy, "-f", formula, "--json", "/dev/stdout"]
        let handle = try FileHandle(forWritingTo: captured)
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        #expect(process.terminationStatus == 0)
        var after = stat()
        #expect(stat(captured.path, &after) == 0)
        #expect(after.st_ino == before.st_ino, "the redirected file was replaced, not written through")
        let text = try String(contentsOf: captured, encoding: .utf8)
        #expect(text.contains("Linear mixed model fit by REML"))
        // The document (its top-level braces at the start of a line), then the summary.
        let start = text.range(of: "{\n")?.lowerBound ?? text.startIndex
        let end = text.range(of: "\n}\n")?.upperBound ?? text.endIndex
        let document = start < end ? String(text[start..<end]) : ""
        let json = try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any]
        #expect(json?["fixef"] != nil)
        #expect(try names(directory) == ["in.csv", "captured.txt"])
    }

    @Test("--json /dev/fd/N names a descriptor: one that is not open is an error, and nothing is written")
    func closedDescriptor() throws {
        let (directory, data) = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try CommandRunner.run(["fit", data, "-f", formula, "--json", "/dev/fd/57", "-q"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("descriptor 57, which is not open"), "\(result.stderr)")
        #expect(try names(directory) == ["in.csv"])
    }

    @Test("a FIFO is written to, not replaced")
    func fifo() throws {
        let (directory, data) = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("pipe").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let received = LockedData()
        let readerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            if let handle = FileHandle(forReadingAtPath: fifo) { received.set(handle.readDataToEndOfFile()) }
            readerDone.signal()
        }
        let result = try CommandRunner.run(["fit", data, "-f", formula, "--json", fifo, "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(readerDone.wait(timeout: .now() + 30) == .success)
        #expect(String(decoding: received.get(), as: UTF8.self).contains("\"fixef\""))
        var info = stat()
        #expect(lstat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(try names(directory) == ["in.csv", "pipe"])
    }

    @Test("a symbolic link is written through; the target keeps its mode")
    func symlink() throws {
        let (directory, data) = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("target.json").path
        let link = directory.appendingPathComponent("link.json").path
        try "old".write(toFile: target, atomically: false, encoding: .utf8)
        #expect(chmod(target, 0o640) == 0)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "target.json")
        let result = try CommandRunner.run(["fit", data, "-f", formula, "--json", link, "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        var info = stat()
        #expect(lstat(link, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
        #expect(stat(target, &info) == 0 && info.st_mode & 0o777 == 0o640)
        #expect(try String(contentsOfFile: target, encoding: .utf8).contains("\"fixef\""))
        #expect(try names(directory) == ["in.csv", "target.json", "link.json"])
        // convert, too, writes through a link.
        let binaryLink = directory.appendingPathComponent("data.lmmbin").path
        try FileManager.default.createSymbolicLink(atPath: binaryLink, withDestinationPath: "real.lmmbin")
        let converted = try CommandRunner.run(["convert", data, binaryLink, "-q"])
        #expect(converted.status == 0, "\(converted.stderr)")
        #expect(lstat(binaryLink, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
        #expect(LMMBinaryFormat.isBinaryFile(path: directory.appendingPathComponent("real.lmmbin").path))
    }

    @Test("predict writes through devices, standard output and symbolic links, and refuses its input as --out")
    func predictOutputs() throws {
        let (directory, data) = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = directory.appendingPathComponent("m.lmm").path
        let fit = try CommandRunner.run(["fit", data, "-f", formula, "--save", model, "-q"])
        try #require(fit.status == 0, "\(fit.stderr)")
        let newData = Fixtures.path("sleepstudy_newdata.csv")

        let device = try CommandRunner.run(["predict", model, newData, "--out", "/dev/null"])
        #expect(device.status == 0, "\(device.stderr)")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)

        let standard = try CommandRunner.run(["predict", model, newData, "--out", "-"])
        #expect(standard.status == 0 && standard.stdout.hasPrefix("row,prediction\n"), "\(standard.stderr)")

        let real = directory.appendingPathComponent("real.csv").path, link = directory.appendingPathComponent("link.csv").path
        try "old".write(toFile: real, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real.csv")
        let linked = try CommandRunner.run(["predict", model, newData, "--out", link])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "real.csv")
        #expect(try String(contentsOfFile: real, encoding: .utf8).hasPrefix("row,prediction\n"))

        let copy = directory.appendingPathComponent("new.csv").path
        try FileManager.default.copyItem(atPath: newData, toPath: copy)
        let before = try Data(contentsOf: URL(fileURLWithPath: copy))
        let same = try CommandRunner.run(["predict", model, copy, "--out", copy])
        #expect(same.status != 0 && !same.signaled)
        #expect(same.stderr.contains("--out would overwrite the new data"), "\(same.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == before)
        #expect(try names(directory) == ["in.csv", "m.lmm", "real.csv", "link.csv", "new.csv"])
    }

    @Test("convert refuses a device as its output")
    func convertToDevice() throws {
        let result = try CommandRunner.run(["convert", sleepstudy, "/dev/null", "-q"])
        #expect(result.status == 1 && !result.signaled)
        #expect(result.stderr.contains("must be a regular file"))
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR)
    }

    @Test("an output that is an input, or another output, is refused and nothing is written")
    func sameFile() throws {
        let (directory, data) = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = try Data(contentsOf: URL(fileURLWithPath: data))
        let hardLink = directory.appendingPathComponent("alias.csv").path
        #expect(link(data, hardLink) == 0)
        let out = directory.appendingPathComponent("out.json").path
        let cases: [([String], String)] = [
            (["--json", data], "--json would overwrite the data file"),
            (["--ranef", hardLink], "--ranef would overwrite the data file"),
            (["--json", out, "--ranef", out], "name the same file"),
            (["--json", out, "--ranef", directory.appendingPathComponent("./out.json").path], "name the same file"),
        ]
        for (arguments, message) in cases {
            let result = try CommandRunner.run(["fit", data, "-f", formula, "-q"] + arguments)
            #expect(result.status == 1 && !result.signaled)
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: data)) == original)
            #expect(try names(directory) == ["in.csv", "alias.csv"])
        }
        // An .lmmbin input under adam, and convert onto its own input by another name.
        let binary = directory.appendingPathComponent("in.lmmbin").path
        #expect(try CommandRunner.run(["convert", data, binary, "-q"]).status == 0)
        let binaryBytes = try Data(contentsOf: URL(fileURLWithPath: binary))
        let adam = try CommandRunner.run(["fit", binary, "-f", formula, "--method", "adam", "--json", binary, "-q"])
        #expect(adam.status == 1 && adam.stderr.contains("would overwrite the data file"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: binary)) == binaryBytes)
        let convert = try CommandRunner.run(["convert", data, hardLink, "-q"])
        #expect(convert.status == 1 && convert.stderr.contains("would overwrite the CSV file"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: data)) == original)
    }

    /// Starts `lmm` on a large CSV file (its temporary directory the scratch directory), sends
    /// `signal` after `delay` seconds, and checks that the process ended by the signal and left
    /// no temporary file. A process that is done before the signal (a fast machine) is run
    /// again on a file four times larger.
    func interrupt(_ arguments: (String, URL) -> [String], signal: Int32, delay: Double) throws {
        for rows in [800_000, 3_200_000, 12_800_000] {
            let (directory, _) = try scratch()
            defer { try? FileManager.default.removeItem(at: directory) }
            let big = directory.appendingPathComponent("big.csv").path
            var text = "y,x,g\n"
            text.reserveCapacity(rows * 25)
            for i in 0..<rows { text += "\(Double(i % 977) * 0.001),\(Double(i % 113)),g\(i % 500)\n" }
            try text.write(toFile: big, atomically: false, encoding: .utf8)
            text = ""
            let pid = try spawn(CommandRunner.productsDirectory.appendingPathComponent("lmm").path, arguments(big, directory),
                                environment: ["TMPDIR=" + directory.path])
            Thread.sleep(forTimeInterval: delay)
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { continue }     // done already: a larger file
            kill(pid, signal)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            // Killed by the signal (WIFSIGNALED, WTERMSIG).
            #expect(status & 0x7f == signal, "wait status \(status)")
            #expect(try names(directory) == ["in.csv", "big.csv"])
            return
        }
        Issue.record("lmm \(arguments("big.csv", URL(fileURLWithPath: "."))) finished within \(delay) s on 12.8M rows: the signal was not tested")
    }

    /// Starts `path` with the signals a shell's background job may ignore or block (SIGINT,
    /// SIGTERM) restored to their defaults, output discarded.
    func spawn(_ path: String, _ arguments: [String], environment: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t(), mask = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = (environment + ProcessInfo.processInfo.environment.filter { $0.key != "TMPDIR" }.map { "\($0.key)=\($0.value)" })
            .map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw InputError("posix_spawn failed: \(result)") }
        return pid
    }

    @Test("SIGINT during convert leaves no temporary file")
    func interruptConvert() throws {
        try interrupt({ big, directory in ["convert", big, directory.appendingPathComponent("big.lmmbin").path, "-q"] },
                      signal: SIGINT, delay: 0.3)
    }

    @Test("SIGINT and SIGTERM during adam on a CSV leave no temporary .lmmbin")
    func interruptAdam() throws {
        for (signal, delay) in [(SIGINT, 0.3), (SIGTERM, 1.0)] {
            try interrupt({ big, _ in ["fit", big, "-f", "y ~ x + (1 | g)", "--method", "adam", "-q"] }, signal: signal, delay: delay)
        }
    }

    @Test("a registered temporary file is removed by the signal handler's table, and unregistered after use")
    func registry() throws {
        let path = NSTemporaryDirectory() + "lmm-registry-\(UUID().uuidString)"
        #expect(SignalCleanup.register(path))
        #expect(SignalCleanup.isRegistered(path))
        SignalCleanup.unregister(path)
        #expect(!SignalCleanup.isRegistered(path))
    }
}

/// Bytes handed from a reader thread to the test.
final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}
