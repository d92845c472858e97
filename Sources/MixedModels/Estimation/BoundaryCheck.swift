/// lme4's boundary check (`lmerControl(boundary.tol = 1e-5)`, `check.boundary` in its
/// optimizeLmm): an optimizer approaches a boundary optimum (a variance of zero) only to within
/// its tolerance, leaving a diagonal θ of 1e-8 where the optimum is 0. Every diagonal θ within
/// `tolerance` of its lower bound is set on the bound, and the point is kept when the criterion
/// there is no worse beyond rounding: where the criterion is even in a scalar θ (one random
/// intercept), its change over 1e-8 is ~1e-16, below the last bit of the criterion, and the
/// comparison would otherwise be decided by rounding.
extension LinearMixedModel {
    /// lme4's `boundary.tol`.
    static let boundaryTolerance = 1e-5

    /// `theta` with its near-boundary elements on the bound when that does not raise the criterion.
    func onBoundaryIfNoWorse(_ theta: [Double], criterion: Criterion) throws -> [Double] {
        let lower = parameters.lowerBounds
        let near = theta.indices.filter { lower[$0] == 0 && theta[$0] != 0 && abs(theta[$0]) < Self.boundaryTolerance }
        guard !near.isEmpty else { return theta }
        var candidate = theta
        for index in near { candidate[index] = 0 }
        let here = try profiledObjective(at: theta, criterion: criterion)
        let there = try profiledObjective(at: candidate, criterion: criterion)
        return there <= here + 1e-12 * max(1, abs(here)) ? candidate : theta
    }
}
