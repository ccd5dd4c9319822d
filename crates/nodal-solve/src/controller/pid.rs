//! The PID step-size factor. A controller never calls the solver: it sees error ratios and
//! proposes the next step.
//!
//! With error ratios `r_n = ||err_n|| / tol` (accept when `r_n <= 1`) and `k` the order of the
//! method, the PID controller of Söderlind (*Digital filters in adaptive time-stepping*, ACM TOMS
//! 29, 2003) multiplies the step by
//!
//! ```text
//! factor = safety * r_n^(-b1) * r_{n-1}^(-b2) * r_{n-2}^(-b3),
//! b1 = (p + i + d) / k,  b2 = -(p + 2 d) / k,  b3 = d / k,
//! ```
//!
//! clamped to `[factor_min, factor_max]`; after an accepted step the factor is not allowed
//! below 1 (as in torchdiffeq, so that the same tolerances take the same steps). `p = d = 0,
//! i = 1` is the classic I controller (the default, torchdiffeq's and diffrax's); adding a
//! proportional term gives a PI controller that damps oscillating step sequences.

/// Coefficients of a PID step-size controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidController {
    /// Proportional coefficient.
    pub pcoeff: f64,
    /// Integral coefficient.
    pub icoeff: f64,
    /// Derivative coefficient.
    pub dcoeff: f64,
    /// Safety factor applied to every proposal.
    pub safety: f64,
    /// Smallest factor a step may shrink by.
    pub factor_min: f64,
    /// Largest factor a step may grow by.
    pub factor_max: f64,
}

impl Default for PidController {
    /// The I controller with torchdiffeq's constants: safety 0.9, factors in [0.2, 10].
    fn default() -> Self {
        Self { pcoeff: 0.0, icoeff: 1.0, dcoeff: 0.0, safety: 0.9, factor_min: 0.2, factor_max: 10.0 }
    }
}

impl PidController {
    /// The integral-only controller (default).
    pub fn i() -> Self {
        Self::default()
    }

    /// A PI controller (Gustafsson's coefficients in diffrax's parametrisation: p = 0.4, i = 0.3).
    pub fn pi() -> Self {
        Self { pcoeff: 0.4, icoeff: 0.3, ..Self::default() }
    }

    /// A PID controller with p = 0.3, i = 0.3, d = 0.1: a well-damped general choice.
    pub fn pid() -> Self {
        Self { pcoeff: 0.3, icoeff: 0.3, dcoeff: 0.1, ..Self::default() }
    }

    /// Propose the factor for the next step. `history` holds `[r_n, r_{n-1}, r_{n-2}]` (the
    /// current ratio first); `order` is the method's order.
    pub fn factor(&self, history: [f64; 3], order: u32, accepted: bool) -> f64 {
        let k = order as f64;
        let r = history[0];
        if r == 0.0 {
            return self.factor_max;
        }
        if !r.is_finite() {
            return self.factor_min;
        }
        let b1 = (self.pcoeff + self.icoeff + self.dcoeff) / k;
        let b2 = -(self.pcoeff + 2.0 * self.dcoeff) / k;
        let b3 = self.dcoeff / k;
        // Earlier ratios default to 1 (neutral) before they exist; zero ratios are floored.
        let pw = |x: f64, e: f64| if e == 0.0 { 1.0 } else { x.max(1e-10).powf(-e) };
        let mut f = self.safety * pw(r, b1) * pw(history[1], b2) * pw(history[2], b3);
        let lo = if accepted { 1.0 } else { self.factor_min };
        let hi = if accepted { self.factor_max } else { 1.0 };
        f = f.clamp(lo.min(hi), hi);
        f
    }
}
