//! Gradients of a loss on the solution at the output times, `L(y(t_1), ..., y(t_N))`, with
//! respect to the initial state, the parameters of the dynamics, and the output times.
//!
//! Four methods, each with its cost:
//!
//! | method | what it differentiates | memory | backward work |
//! |---|---|---|---|
//! | [`GradMethod::Backprop`] | the computed solution, exactly (discrete adjoint of every RK step) | one state per accepted step | per step: `s - 1` evaluations + up to `s` VJPs |
//! | [`GradMethod::Checkpoint`] | the same, exactly | one state per `m` steps plus one segment | one extra forward replay |
//! | [`GradMethod::Adjoint`] | the exact ODE, approximately (continuous adjoint, Chen et al. 2018) | O(1) in the number of steps | a reverse-time solve of `[y, a, a_theta]` |
//! | [`GradMethod::AdjointCheckpointed`] | the exact ODE, approximately, with `y` re-solved forwards instead of backwards | one state per `m` steps plus one segment's dense steps | a forward re-solve of `y` and a reverse solve of `[a, a_theta]` |
//!
//! The plain adjoint reconstructs `y` backwards in time; where the dynamics contract, that
//! reconstruction amplifies its errors and the gradient can be far off. The checkpointed adjoint
//! never integrates `y` in reverse (see [`checkpointed_adjoint`]).
//!
//! The upstream cotangents are `ybar[k] = dL/dy(t_k)`. Step sizes are treated as constants
//! (not differentiated), as in diffrax. Time gradients use `dL/dt_k = ybar_k . f(t_k, y_k)`
//! for `k >= 1` and `dL/dt_0 = -(dL/dy0 - ybar_0) . f(t_0, y_0)` (a trajectory through
//! `(t0 + d, y0)` passes through `y0 - d f(t0, y0)` at `t0`).

mod checkpointed;
mod continuous;
mod discrete;
pub mod events;
mod implicit;

pub use checkpointed::checkpointed_adjoint;
pub use continuous::{AdjointOptions, adjoint};
pub use discrete::{backprop_tape, default_checkpoint_interval};
pub use implicit::backprop_implicit_tape;

use crate::dynamics::{Dynamics, VjpDynamics};
use crate::error::{SolveError, SolveResult};
use crate::integrate::{Record, solve_recorded};
use crate::norm::ErrorNorm;
use crate::options::{SolveOptions, StepMode};
use crate::solution::Tape;
use crate::state::State;
use crate::stats::Stats;
use crate::stepper::MethodStepper;

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
    /// Continuous adjoint with `y` re-solved forwards from a checkpoint every `m` steps
    /// (`None`: the defaults of [`GradMethod::Checkpoint`]) instead of reconstructed backwards.
    AdjointCheckpointed(Option<usize>),
}

impl GradMethod {
    /// Parse `backprop`, `checkpoint`, `checkpoint:M`, `adjoint`, `adjoint-checkpointed` or
    /// `adjoint-checkpointed:M` (the names [`GradMethod`]'s `Display` writes).
    pub fn parse(s: &str) -> Option<Self> {
        let interval = |m: &str| m.parse().ok().filter(|&m: &usize| m > 0);
        match s {
            "backprop" | "direct" => Some(Self::Backprop),
            "checkpoint" => Some(Self::Checkpoint(None)),
            "adjoint" => Some(Self::Adjoint),
            "adjoint-checkpointed" => Some(Self::AdjointCheckpointed(None)),
            _ => {
                if let Some(m) = s.strip_prefix("checkpoint:") {
                    interval(m).map(|m| Self::Checkpoint(Some(m)))
                } else {
                    s.strip_prefix("adjoint-checkpointed:").and_then(interval).map(|m| Self::AdjointCheckpointed(Some(m)))
                }
            }
        }
    }

    /// The accepted spellings, for error messages.
    pub const NAMES: &'static str = "backprop, checkpoint, checkpoint:M, adjoint, adjoint-checkpointed or adjoint-checkpointed:M";
}

impl std::fmt::Display for GradMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Backprop => write!(f, "backprop"),
            Self::Checkpoint(None) => write!(f, "checkpoint"),
            Self::Checkpoint(Some(m)) => write!(f, "checkpoint:{m}"),
            Self::Adjoint => write!(f, "adjoint"),
            Self::AdjointCheckpointed(None) => write!(f, "adjoint-checkpointed"),
            Self::AdjointCheckpointed(Some(m)) => write!(f, "adjoint-checkpointed:{m}"),
        }
    }
}

impl GradMethod {
    /// What the forward pass must record for this method over `ts` with steps `step`. This is
    /// the one place the defaults live: `Checkpoint(None)` stores `ceil(sqrt(n))` states for `n`
    /// fixed steps ([`default_checkpoint_interval`]) and every
    /// [`ADAPTIVE_CHECKPOINT_INTERVAL`]-th state with adaptive steps.
    pub fn record(&self, ts: &[f64], step: StepMode) -> Record {
        let default_interval = || match step {
            StepMode::Fixed(h) => {
                let span = match (ts.first(), ts.last()) {
                    (Some(a), Some(b)) => (b - a).abs(),
                    _ => 0.0,
                };
                default_checkpoint_interval((span / h).ceil() as usize)
            }
            StepMode::Adaptive => ADAPTIVE_CHECKPOINT_INTERVAL,
        };
        match *self {
            Self::Backprop => Record::Every(1),
            Self::Checkpoint(Some(m)) => Record::Every(m.max(1)),
            Self::Checkpoint(None) => Record::Every(default_interval()),
            Self::Adjoint => Record::None,
            Self::AdjointCheckpointed(Some(m)) => Record::Checkpoints(m.max(1)),
            Self::AdjointCheckpointed(None) => Record::Checkpoints(default_interval()),
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
    pub stepper: MethodStepper,
    /// The recorded tape, for the discrete methods.
    pub tape: Option<Tape<S>>,
}

impl<S: State> Backward<S> {
    /// Gradients of `L` given `ybar[k] = dL/dy(t_k)`, the forward outputs `ys` at `ts`, and the
    /// options of the adjoint's solves (used by the two continuous adjoints only). With
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
        gradients_with(self.method, &self.stepper, self.tape.as_ref(), f, ts, ys, ybar, adjoint_opts, want_t)
    }
}

/// [`Backward::gradients`] with a borrowed tape (per-sample solves keep one per row).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gradients_with<S: State, D: VjpDynamics<S>>(
    method: GradMethod,
    stepper: &MethodStepper,
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
        (GradMethod::AdjointCheckpointed(_), Some(tape)) => checkpointed_adjoint(f, tape, ts, ys, ybar, adjoint_opts, want_t),
        (_, Some(tape)) if tape.step_records => match stepper {
            MethodStepper::Explicit(rk) => Ok(backprop_tape(f, rk.tableau, tape, ts, ys, ybar, want_t)),
            MethodStepper::Esdirk(e) => backprop_implicit_tape(f, e, tape, ts, ys, ybar, want_t),
            MethodStepper::Rosenbrock(r) => Err(SolveError::InvalidStep(format!(
                "exact gradients through {} steps are not implemented: use kvaerno3 or kvaerno5 for backprop and checkpointing, or the adjoint",
                r.tableau.name
            ))),
        },
        (_, _) => Err(SolveError::InvalidStep("the forward solve was not recorded for this gradient method".into())),
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
    Ok((sol, Backward { method, stepper: opts.stepper(), tape }))
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
    /// [`GradMethod::Adjoint`] only: how far the reverse-time reconstruction of `y` drifted
    /// from the forward solution, `max_k ||y_rec(t_k) - y(t_k)|| / max(||y(t_k)||, 1e-300)`
    /// (Euclidean norms) over the output times before the first. Of the order of the
    /// tolerance when reconstruction holds; much larger means the gradient may be wrong too, and
    /// [`GradMethod::AdjointCheckpointed`] is the fix. `None` for the other methods.
    pub reconstruction_error: Option<f64>,
}
