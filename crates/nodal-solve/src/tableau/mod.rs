//! Butcher tableaus of explicit Runge-Kutta methods, stored as data with their citations.
//!
//! A method with `s` stages advances `y_n` to `y_{n+1}` by
//!
//! ```text
//! k_i     = f(t_n + c_i h, y_n + h * sum_{j<i} a_ij k_j)      i = 1..s
//! y_{n+1} = y_n + h * sum_i b_i k_i
//! err     = h * sum_i e_i k_i                                  (embedded methods)
//! ```
//!
//! Dense output on a step is `y(t_n + theta h) = y_n + h * sum_i b_i(theta) k_i`, where the
//! `b_i(theta)` are polynomials without constant term. Methods whose interpolant needs stages
//! beyond the `s` of the step itself (DOP853) list those as `extra` stages, evaluated only on
//! steps that contain an output time.

mod bosh3;
mod dopri5;
mod dopri8;
mod fixed;
mod tsit5;

pub use bosh3::BOSH3;
pub use dopri5::DOPRI5;
pub use dopri8::DOPRI8;
pub use fixed::{EULER, HEUN, MIDPOINT, RK4};
pub use tsit5::TSIT5;

/// Largest number of stages (main plus extra) a tableau may have.
pub const MAX_STAGES: usize = 16;

/// How a tableau estimates the local error of a step.
#[derive(Debug, Clone, Copy)]
pub enum ErrorEstimator {
    /// No estimate: fixed-step use only.
    None,
    /// `err = h * sum_i e_i k_i` with `e = b - b_hat` (an embedded pair).
    Embedded(&'static [f64]),
    /// DOP853's combined estimator (Hairer, Norsett, Wanner, *Solving ODEs I*, sec. II.10):
    /// with `err5 = h sum e5_i k_i` and `err3 = h sum e3_i k_i`, the error norm is
    /// `|err5|^2 / sqrt(|err5|^2 + 0.01 |err3|^2)`.
    Dop853 {
        /// Weights of the fifth-order error estimate.
        e5: &'static [f64],
        /// Weights of the third-order error estimate.
        e3: &'static [f64],
    },
}

/// The interpolant a tableau offers between step ends.
#[derive(Debug, Clone, Copy)]
pub enum DenseOutput {
    /// Cubic Hermite through `y_n, f(y_n), y_{n+1}, f(y_{n+1})` (third order).
    Hermite,
    /// Native continuous extension: `b_i(theta) = sum_p coeffs[i][p] * theta^(p+1)`, for `i`
    /// over the `s` stages followed by the `extra` stages.
    Polynomial {
        /// Order of the interpolant.
        order: u32,
        /// Nodes of the extra stages (evaluated lazily).
        extra_c: &'static [f64],
        /// Rows of `a` for the extra stages; row `m` has `s + m` entries.
        extra_a: &'static [&'static [f64]],
        /// Polynomial coefficients, one row per stage (main then extra), lowest power first.
        coeffs: &'static [&'static [f64]],
    },
}

/// An explicit Runge-Kutta method as data.
#[derive(Debug, Clone, Copy)]
pub struct Tableau {
    /// Short name used on the command line and in files (`"dopri5"`).
    pub name: &'static str,
    /// Order of the propagated solution.
    pub order: u32,
    /// Order of the embedded (lower-order) solution used for error control, if any.
    pub error_order: Option<u32>,
    /// Stage nodes `c_i`.
    pub c: &'static [f64],
    /// Strictly lower-triangular coefficients: row `i` has `i` entries.
    pub a: &'static [&'static [f64]],
    /// Weights `b_i` of the propagated solution.
    pub b: &'static [f64],
    /// Local error estimator.
    pub error: ErrorEstimator,
    /// First Same As Last: the last stage is `f(t_{n+1}, y_{n+1})`, reused as the next step's first.
    pub fsal: bool,
    /// Interpolant.
    pub dense: DenseOutput,
    /// Where the coefficients come from.
    pub citation: &'static str,
}
