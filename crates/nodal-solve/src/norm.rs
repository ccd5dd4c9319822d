//! Error norms for step-size control.

use crate::state::State;

/// Measures a local error estimate relative to the tolerances; a step is accepted when the
/// result is at most 1.
pub trait ErrorNorm<S> {
    /// Norm of `err` scaled entrywise by `atol + rtol * max(|y0|, |y1|)`.
    fn norm(&self, err: &S, y0: &S, y1: &S, rtol: f64, atol: f64) -> f64;
}

/// Root-mean-square over the whole state (torchdiffeq's and diffrax's default, so that a batch
/// solved as one "giant ODE" takes the same steps as in those tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct RmsNorm;

impl<S: State> ErrorNorm<S> for RmsNorm {
    fn norm(&self, err: &S, y0: &S, y1: &S, rtol: f64, atol: f64) -> f64 {
        let (s, n) = S::weighted_sq_sum(err, y0, y1, rtol, atol);
        if n == 0 { 0.0 } else { (s / n as f64).sqrt() }
    }
}
