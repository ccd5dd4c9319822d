//! The contract between SDE solvers and the equation `dy = f(t, y) dt + g(t, y) dW`.
//!
//! States are batches of rows stored row-major as `[rows][dim]`; the Brownian motion has
//! `channels` components per row, and `g(t, y)` maps a row's noise increment (`channels`
//! numbers) to a state change (`dim` numbers). The solvers only ever need the product `g dW`
//! and vector-Jacobian products of `f` and of that product, so one trait serves every noise
//! shape ([`Noise`]); the Milstein corrections, which need derivatives of `g`, are optional.

use super::error::SdeError;
use crate::scalar::Scalar;

/// Shape of the noise, which decides which schemes apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// One channel per state component, `g` diagonal (`channels = dim`): `(g dW)_i = g_i dW_i`.
    Diagonal,
    /// One channel per row (`channels = 1`), `g` a column.
    Scalar,
    /// `g(t)` does not depend on the state (any channel count).
    Additive,
    /// `g(t, y)` a full `dim x channels` matrix.
    General,
}

/// How the stochastic integral is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calculus {
    /// Ito: `g` evaluated at the start of each increment.
    Ito,
    /// Stratonovich: midpoint reading; the chain rule of ordinary calculus holds.
    Stratonovich,
}

/// The three "diagonal-noise Milstein" formulas, which differ once `g_i` depends on other
/// components than `y_i`. With `q_j = dW_j^2 - dt` (Ito) or `dW_j^2` (Stratonovich), the
/// correction added to an Euler step is:
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilsteinForm {
    /// `1/2 sum_j (d g_j / d y_i) g_j q_j`: a vector-Jacobian product of `g` (torchsde's form).
    Transposed,
    /// `1/2 sum_j (d g_i / d y_j) g_j (dW_j dW_i - delta_ij dt)`: the commutative-noise
    /// formula (diffrax's `ItoMilstein`), a Jacobian-vector product.
    Commutative,
    /// `1/2 g_i (d g_i / d y_i) q_i`: the textbook formula that assumes `g_i` depends on `y_i`
    /// only (uses the Jacobian's diagonal).
    DiagonalOnly,
}

/// Drift and diffusion of an SDE with vector-Jacobian products. Parameters are one flat
/// vector (drift's first); `adj_y` arguments are overwritten, `adj_p` ones accumulated.
pub trait SdeTerms<T: Scalar> {
    /// State entries per row.
    fn dim(&self) -> usize;
    /// Brownian channels per row.
    fn channels(&self) -> usize;
    /// Shape of the noise.
    fn noise(&self) -> Noise;
    /// Number of parameters (length of `adj_p`).
    fn num_params(&self) -> usize;

    /// `out <- f(t, y)`.
    fn drift(&mut self, t: f64, y: &[T], out: &mut [T]);
    /// `out <- g(t, y) dw`, row by row (`dw` has `rows * channels` entries).
    fn diffusion_times(&mut self, t: f64, y: &[T], dw: &[T], out: &mut [T]);
    /// `adj_y <- a^T df/dy`, `adj_p += a^T df/dtheta` at `(t, y)`.
    fn drift_vjp(&mut self, t: f64, y: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]);
    /// `adj_y <- a^T d(g dw)/dy`, `adj_p += a^T d(g dw)/dtheta` at `(t, y)` for fixed `dw`.
    fn diffusion_times_vjp(&mut self, t: f64, y: &[T], dw: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]);

    /// `out <- ` the Milstein correction of `form` (see [`MilsteinForm`]) with
    /// `q = dW^2 - ito_dt` (`ito_dt = dt` for Ito, `0` for Stratonovich).
    fn milstein(&mut self, form: MilsteinForm, t: f64, y: &[T], dw: &[T], ito_dt: T, out: &mut [T]) -> Result<(), SdeError> {
        let _ = (form, t, y, dw, ito_dt, out);
        Err(SdeError::Unsupported("these SDE terms provide no Milstein correction (it needs derivatives of the diffusion)".into()))
    }
    /// Vector-Jacobian product of [`SdeTerms::milstein`] with respect to `y` and the
    /// parameters (second derivatives of `g`).
    #[allow(clippy::too_many_arguments)]
    fn milstein_vjp(
        &mut self,
        form: MilsteinForm,
        t: f64,
        y: &[T],
        dw: &[T],
        ito_dt: T,
        a: &[T],
        adj_y: &mut [T],
        adj_p: &mut [T],
    ) -> Result<(), SdeError> {
        let _ = (form, t, y, dw, ito_dt, a, adj_y, adj_p);
        Err(SdeError::Unsupported("these SDE terms provide no Milstein derivatives".into()))
    }
}
