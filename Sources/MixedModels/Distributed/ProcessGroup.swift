/// The processes that run one fit together — the ranks of an MPI job, or this process alone —
/// and the collectives the distributed fits need.
///
/// The library does not link MPI (a plain `lmm` must run where no MPI is installed): the MPI
/// implementation lives in the `MixedModelsMPI` target, linked only by the `lmm-mpi` executable.
/// Every method is collective: all processes call it, in the same order, with the same sizes.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's index, `0..<size`.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Copies process `root`'s `bytes` into every process's `bytes` (the same count on each).
    func broadcast(_ bytes: inout [UInt8], from root: Int)
    /// Replaces `values` by their elementwise sum over the processes (the same count on each).
    /// The order of the additions is the implementation's: use it for integers (counts, flags),
    /// which every order adds exactly.
    func allreduceSum(_ values: inout [Double])
    /// Replaces `values` by their elementwise sum over the processes, the same bits on every
    /// process (summed at rank 0, then broadcast): for the floating-point partial sums of a
    /// distributed fit, whose processes must take the same decisions.
    func sum(_ values: inout [Double])
    /// Replaces `values` by their elementwise maximum over the processes (the same count on
    /// each): exact in any order, so the same on every process.
    func maximum(_ values: inout [Double])
}

/// This process alone: rank 0 of 1, where the collectives have nothing to do.
public final class SingleProcess: ProcessGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func broadcast(_ bytes: inout [UInt8], from root: Int) {}
    public func allreduceSum(_ values: inout [Double]) {}
    public func sum(_ values: inout [Double]) {}
    public func maximum(_ values: inout [Double]) {}
}
