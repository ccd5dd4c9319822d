//! Gradients of a loss on the solution at the output times, `L(y(t_1), ..., y(t_N))`, with
//! respect to the initial state, the parameters of the dynamics, and the output times.
//!
//! Three methods, each with its cost:
//!
//! | method | what it differentiates | memory | backward work |
//! |---|---|---|---|
//! | [`GradMethod::Backprop`] | the computed solution, exactly (discrete adjoint of every RK step) | one state per accepted step | per step: `s - 1` evaluations + up to `s` VJPs |
//! | [`GradMethod::Checkpoint`] | the same, exactly | one state per `m` steps plus one segment | one extra forward replay |
//! | [`GradMethod::Adjoint`] | the exact ODE, approximately (continuous adjoint, Chen et al. 2018) | O(1) in the number of steps | a reverse-time solve of `[y, a, a_theta]` |
//!
//! The upstream cotangents are `ybar[k] = dL/dy(t_k)`. Step sizes are treated as constants
//! (not differentiated), as in diffrax. Time gradients use `dL/dt_k = ybar_k . f(t_k, y_k)`
//! for `k >= 1` and `dL/dt_0 = -(dL/dy0 - ybar_0) . f(t_0, y_0)` (a trajectory through
//! `(t0 + d, y0)` passes through `y0 - d f(t0, y0)` at `t0`).

mod continuous;
mod discrete;

pub use continuous::{AdjointOptions, adjoint};
pub use discrete::{backprop_tape, default_checkpoint_interval};

use crate::stats::Stats;

/// Which gradient method a solve uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradMethod {
    /// Exact backpropagation through every step, states kept for every step.
    Backprop,
    /// Exact backpropagation, states kept every `m` steps (`None`: `ceil(sqrt(steps))`,
    /// chosen after the forward pass from an estimate; see [`default_checkpoint_interval`]).
    Checkpoint(Option<usize>),
    /// Continuous adjoint with O(1) memory.
    Adjoint,
}

impl GradMethod {
    /// Parse `backprop`, `checkpoint`, `checkpoint:M` or `adjoint`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "backprop" | "direct" => Some(Self::Backprop),
            "checkpoint" => Some(Self::Checkpoint(None)),
            "adjoint" => Some(Self::Adjoint),
            _ => s.strip_prefix("checkpoint:").and_then(|m| m.parse().ok()).filter(|&m| m > 0).map(|m| Self::Checkpoint(Some(m))),
        }
    }
}

/// Gradients of the loss and the work the backward pass did.
#[derive(Debug, Clone)]
pub struct Gradients<S, P> {
    /// `dL/dy0`.
    pub y0: S,
    /// `dL/dtheta`.
    pub params: P,
    /// `dL/dt_k` for every output time, when asked for.
    pub ts: Option<Vec<f64>>,
    /// Backward work (replays included).
    pub stats: Stats,
}
