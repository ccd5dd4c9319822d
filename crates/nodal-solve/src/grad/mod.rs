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

use crate::dynamics::{Dynamics, VjpDynamics};
use crate::error::{SolveError, SolveResult};
use crate::integrate::{Record, solve_recorded};
use crate::norm::ErrorNorm;
use crate::options::{SolveOptions, StepMode};
use crate::solution::Tape;
use crate::state::State;
use crate::stats::Stats;
use crate::tableau::Tableau;

/// Checkpoint interval of [`GradMethod::Checkpoint`]`(None)` with adaptive steps, whose number
/// is unknown before the forward pass ends: 8 steps per stored state.
pub const ADAPTIVE_CHECKPOINT_INTERVAL: usize = 8;

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

impl GradMethod {
    /// What the forward pass must record for this method over `ts` with steps `step`. This is
    /// the one place the defaults live: `Checkpoint(None)` stores `ceil(sqrt(n))` states for `n`
    /// fixed steps ([`default_checkpoint_interval`]) and every
    /// [`ADAPTIVE_CHECKPOINT_INTERVAL`]-th state with adaptive steps.
    pub fn record(&self, ts: &[f64], step: StepMode) -> Record {
        match *self {
            Self::Backprop => Record::Every(1),
            Self::Checkpoint(Some(m)) => Record::Every(m.max(1)),
            Self::Checkpoint(None) => Record::Every(match step {
                StepMode::Fixed(h) => {
                    let span = match (ts.first(), ts.last()) {
                        (Some(a), Some(b)) => (b - a).abs(),
                        _ => 0.0,
                    };
                    default_checkpoint_interval((span / h).ceil() as usize)
                }
                StepMode::Adaptive => ADAPTIVE_CHECKPOINT_INTERVAL,
            }),
            Self::Adjoint => Record::None,
        }
    }
}

/// What a forward solve keeps for the backward pass of its gradient method: the tape (backprop
/// and checkpointing) or nothing but the outputs (the continuous adjoint).
#[derive(Debug, Clone)]
pub struct Backward<S> {
    /// The gradient method.
    pub method: GradMethod,
    /// The method of the forward solve (replayed by the discrete adjoint).
    pub tableau: &'static Tableau,
    /// The recorded tape, for the discrete methods.
    pub tape: Option<Tape<S>>,
}

impl<S: State> Backward<S> {
    /// Gradients of `L` given `ybar[k] = dL/dy(t_k)`, the forward outputs `ys` at `ts`, and the
    /// options of the adjoint's reverse solve (used by [`GradMethod::Adjoint`] only). With
    /// `want_t`, also `dL/dt_k`.
    pub fn gradients<D: VjpDynamics<S>>(
        &self,
        f: &mut D,
        ts: &[f64],
        ys: &[S],
        ybar: &[S],
        adjoint_opts: &AdjointOptions,
        want_t: bool,
    ) -> Result<Gradients<S, D::Params>, SolveError> {
        gradients_with(self.method, self.tableau, self.tape.as_ref(), f, ts, ys, ybar, adjoint_opts, want_t)
    }
}

/// [`Backward::gradients`] with a borrowed tape (per-sample solves keep one per row).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gradients_with<S: State, D: VjpDynamics<S>>(
    method: GradMethod,
    tableau: &'static Tableau,
    tape: Option<&Tape<S>>,
    f: &mut D,
    ts: &[f64],
    ys: &[S],
    ybar: &[S],
    adjoint_opts: &AdjointOptions,
    want_t: bool,
) -> Result<Gradients<S, D::Params>, SolveError> {
    match (method, tape) {
        (GradMethod::Adjoint, _) => adjoint(f, ts, ys, ybar, adjoint_opts, want_t),
        (_, Some(tape)) => Ok(backprop_tape(f, tableau, tape, ts, ys, ybar, want_t)),
        (_, None) => Err(SolveError::InvalidStep("the forward solve was not recorded for this gradient method".into())),
    }
}

/// A joint forward solve that keeps what `method`'s backward pass needs.
pub fn solve_for_gradients<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
    method: GradMethod,
) -> SolveResult<S, Backward<S>> {
    let (sol, tape) = solve_recorded(f, y0, ts, opts, norm, method.record(ts, opts.step))?;
    Ok((sol, Backward { method, tableau: opts.method, tape }))
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
