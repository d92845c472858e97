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
    static func forEach(_ count: Int, concurrent: Bool = true, _ body: @escaping (Int) -> Void) {
        if !concurrent || count <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        let carried = UncheckedBody(body: body)
        DispatchQueue.concurrentPerform(iterations: count) { carried.body($0) }
    }
}
