//! Lanes: what the integration loop steps.
//!
//! A *lane* is one independently controlled trajectory: its own time, step size, error history,
//! stops and status. The loop ([`crate::integrate`]) holds that control state and the accept /
//! land-on-stop / record logic once; a [`Lanes`] implementation holds the states and does the
//! arithmetic on a *block* of lanes (the ones stepping this iteration):
//!
//! - [`Joint`]: one lane over any [`State`](crate::State) (a batch solved as one "giant ODE", the
//!   adjoint's augmented tuples, regularised states);
//! - [`Rows`]: `n` lanes over the rows of row-major data (per-sample solving); the block gathers
//!   the active rows, so rows that have finished leave the batch the dynamics see.
//!
//! Steppers ([`crate::stepper`]) are written once against [`LaneArith`] and [`Lanes::eval`], so
//! every method runs in both modes.

mod joint;
mod rows;

pub use joint::{Joint, OutputHook, StateArith, StateEval};
pub use rows::{FnRows, PrefixNorm, RowDynamics, RowNorm, Rows};

use crate::stepper::Workspace;

/// Arithmetic on block buffers: the linear combinations a stepper and its interpolant need.
///
/// A buffer holds one state per lane of the block (lanes `0..n` of the block, in block order).
pub trait LaneArith {
    /// A buffer of block states (a stage, a state, an error estimate).
    type Buf;

    /// `out_j <- base_j + hs[j] * sum_i coeffs[i] * ks[i]_j` for the lanes `j < hs.len()`,
    /// skipping zero coefficients (`coeffs.len() <= ks.len()`).
    fn lincomb(&self, out: &mut Self::Buf, base: &Self::Buf, hs: &[f64], coeffs: &[f64], ks: &[Self::Buf]);

    /// The same combination for lane `j` only, with step `h`.
    fn lincomb_lane(&self, j: usize, out: &mut Self::Buf, base: &Self::Buf, h: f64, coeffs: &[f64], ks: &[Self::Buf]);

    /// `out_j <- w[0] x[0]_j + w[1] x[1]_j + w[2] x[2]_j + w[3] x[3]_j` for lane `j` (cubic
    /// Hermite interpolation).
    fn combine4_lane(&self, j: usize, out: &mut Self::Buf, w: [f64; 4], x: [&Self::Buf; 4]);

    /// Entries of one lane of `buf` (what implicit steppers size their host copies by).
    fn lane_width(&self, buf: &Self::Buf) -> usize;

    /// Lane `j` of `buf` into `out` (of length [`LaneArith::lane_width`]) as `f64`.
    fn lane_to_f64(&self, j: usize, buf: &Self::Buf, out: &mut [f64]);

    /// Overwrite lane `j` of `buf` from `src` (of length [`LaneArith::lane_width`]).
    fn lane_from_f64(&self, j: usize, buf: &mut Self::Buf, src: &[f64]);
}

/// Block arithmetic plus evaluations of the dynamics: all a stepper's stages need.
pub trait Evaluate: LaneArith {
    /// `dy_j <- f(ts[j], y_j)` for the block lanes `j < ts.len()`.
    fn eval(&mut self, ts: &[f64], y: &Self::Buf, dy: &mut Self::Buf);
}

/// The states being integrated and their dynamics, as seen by the loop. See the module docs.
///
/// Protocol of one iteration: [`Lanes::first_stages`] for lanes without a cached derivative,
/// then [`Lanes::load`] of the block into the workspace (`ws.y`, `ws.k[0]`), the stepper's
/// stages, [`Lanes::advance`] for each accepted lane, and [`Lanes::unload`].
pub trait Lanes: Evaluate {
    /// One lane's state as outputs, tapes and dense steps store it.
    type Lane: Clone;

    /// Number of lanes.
    fn count(&self) -> usize;

    /// Bytes one stored [`Lanes::Lane`] takes (what the memory limit of tapes, dense output and
    /// step records counts).
    fn lane_bytes(&self) -> usize;

    /// A zeroed buffer wide enough for every lane.
    fn buf(&self) -> Self::Buf;

    /// Error ratios `||err_j|| / tol` of the block lanes `j < out.len()` (the lanes' error norm,
    /// scaled by `atol + rtol * max(|y0|, |y1|)`).
    fn error_ratios(&self, err: &Self::Buf, y0: &Self::Buf, y1: &Self::Buf, rtol: f64, atol: f64, out: &mut [f64]);

    /// Whether every entry of each block lane `j < out.len()` is finite.
    fn finite(&self, y: &Self::Buf, out: &mut [bool]);

    /// Lane `j` of a block buffer, as a stored state.
    fn lane(&self, j: usize, buf: &Self::Buf) -> Self::Lane;

    /// Whether every entry of a lane's initial state is finite.
    fn initial_finite(&self, lane: usize) -> bool;

    /// Evaluate and cache `f(t, y)` at the current state of each of `lanes` (at `ts`); write
    /// whether each derivative is finite into `finite`.
    fn first_stages(&mut self, lanes: &[usize], ts: &[f64], finite: &mut [bool]);

    /// Put the current states and cached derivatives of `block` into `ws.y` and `ws.k[0]`.
    fn load(&mut self, block: &[usize], ws: &mut Workspace<Self::Buf>);

    /// Block lane `j` (lane `lane`) accepted its step: its state becomes `ws.y1`'s lane `j`, and
    /// its cached derivative `ws.k[end]`'s lane `j` when the stepper has `f(t1, y1)` there.
    fn advance(&mut self, j: usize, lane: usize, ws: &mut Workspace<Self::Buf>, end: Option<usize>);

    /// End of the iteration: lanes not advanced keep their state.
    fn unload(&mut self, block: &[usize], ws: &mut Workspace<Self::Buf>);

    /// Store block lane `j` of `buf` as output `index` of lane `lane`.
    fn record(&mut self, index: usize, j: usize, lane: usize, buf: &Self::Buf);

    /// A hard output time was reached exactly by `lane`: apply any jump to its state (the
    /// continuous adjoint adds cotangents there). Returns whether the state changed.
    fn at_output(&mut self, _lane: usize, _index: usize, _t: f64) -> bool {
        false
    }
}
