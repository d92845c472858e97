import Foundation

/// Data-parallel loops over Dispatch.
enum Parallel {
    /// A closure carried across threads. Callers guarantee what the compiler cannot see:
    /// iterations only read shared state and write disjoint slots.
    private struct UncheckedBody: @unchecked Sendable {
        let body: (Int) -> Void
    }

    /// Runs `body(i)` for i in 0..<count on all cores (`DispatchQueue.concurrentPerform`), or
    /// in order on this thread when `concurrent` is false or there is one iteration.
    /// Iterations must not share mutable state.
    /// - Parameter threads: at most this many threads (nil: ``Threading/coreCount``, the cores
    ///   or `LMM_THREADS`); with fewer than the cores, worker w runs i = w, w + threads, ….
    static func forEach(_ count: Int, concurrent: Bool = true, threads: Int? = nil, _ body: @escaping (Int) -> Void) {
        let workers = min(threads ?? Threading.coreCount, count)
        if !concurrent || count <= 1 || workers <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        let carried = UncheckedBody(body: body)
        if workers >= ProcessInfo.processInfo.activeProcessorCount {
            DispatchQueue.concurrentPerform(iterations: count) { carried.body($0) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for i in stride(from: worker, to: count, by: workers) { carried.body(i) }
        }
    }
}
