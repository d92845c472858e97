/// The forms of MacKay's loop (empirical Bayes without a validation set), shared by the exact
/// loop (``LinearMixedModel/fit(mackay:)``) and the streaming fitter's learned penalties
/// (``AdamOptions/Penalties/learned(_:)``, quick and evidence forms only).
public enum MacKayForm: String, Sendable, CaseIterable, Codable {
    /// "Quick and dirty": Vⱼ ← diag(Bⱼ'Bⱼ/qⱼ), σ² ← SSE/n. Under-estimates the variances: the
    /// predictions carry only Var(E[b|y]) of Var(b) = E[Var(b|y)] + Var(E[b|y]).
    case quick = "mackay-quick"
    /// MacKay's evidence form: σ²ⱼₜ ← ‖bⱼₜ‖²/γⱼₜ with γⱼₜ = qⱼ − tr(Cⱼₜ)/σ²ⱼₜ the number of
    /// well-determined parameters; σ² ← SSE/(n − p − Σγ). Diagonal Vⱼ; its fixed point is REML.
    case evidence = "mackay"
    /// EM: Vⱼ ← (Bⱼ'Bⱼ + Σₗ Cⱼₗ)/qⱼ, σ² ← (SSE + tr(WCW'))/n — the missing E[Var(b|y)] added
    /// back. Full covariance blocks; converges to REML.
    case em = "em"

    /// The short name (`quick`, `evidence`, `em`), as the command line's `--penalties` takes it.
    public var shortName: String {
        switch self {
        case .quick: "quick"
        case .evidence: "evidence"
        case .em: "em"
        }
    }
}
