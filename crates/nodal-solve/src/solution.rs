//! What a solve returns.

use crate::stats::Stats;

/// Outputs of a solve at the requested times, with work statistics.
#[derive(Debug, Clone)]
pub struct Solution<S> {
    /// The output times reached (all requested ones on success).
    pub ts: Vec<f64>,
    /// The state at each output time.
    pub ys: Vec<S>,
    /// Work done.
    pub stats: Stats,
}

/// An output time that falls inside an accepted step: `t = t_step + theta * h`, `0 < theta <= 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputAt {
    /// Index of the accepted step.
    pub step: usize,
    /// Index of the output time.
    pub index: usize,
    /// Position inside the step (1 means the step's end, taken from `y_{n+1}` itself).
    pub theta: f64,
}

/// One accepted step: start time and signed size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRecord {
    /// Time at the start of the step.
    pub t: f64,
    /// Signed step size (negative in reverse time).
    pub h: f64,
}

/// The record of a forward solve that the gradient engine replays: every accepted step's time
/// and size, where each output fell, and the states at the start of checkpointed steps.
///
/// With `every == 1` every step's start state is kept (plain backprop through the solver);
/// with `every == m`, one state per `m` steps (checkpointing; segments are recomputed).
#[derive(Debug, Clone)]
pub struct Tape<S> {
    /// Accepted steps in order.
    pub steps: Vec<StepRecord>,
    /// Where outputs fell, ordered by step.
    pub outputs: Vec<OutputAt>,
    /// Checkpoint interval in steps.
    pub every: usize,
    /// State at the start of steps `0, every, 2 every, ...`.
    pub checkpoints: Vec<S>,
    /// Time at the start of steps `0, every, 2 every, ...` (one per checkpoint).
    pub checkpoint_times: Vec<f64>,
    /// Whether `steps` and `outputs` are kept (false for the checkpointed continuous adjoint,
    /// which needs only the checkpoints).
    pub step_records: bool,
}

impl<S> Tape<S> {
    /// An empty tape with a checkpoint every `every` steps (at least 1).
    pub fn new(every: usize, step_records: bool) -> Self {
        Self {
            steps: Vec::new(),
            outputs: Vec::new(),
            every: every.max(1),
            checkpoints: Vec::new(),
            checkpoint_times: Vec::new(),
            step_records,
        }
    }
}

/// One accepted step with what its interpolant needs.
#[derive(Debug, Clone)]
pub struct DenseStep<S> {
    /// Start time.
    pub t: f64,
    /// Signed step size.
    pub h: f64,
    /// State at the start.
    pub y0: S,
    /// State at the end.
    pub y1: S,
    /// Stage derivatives used by the interpolant (the stepper's
    /// [`dense_slots`](crate::stepper::Stepper::dense_slots): all stages for native
    /// interpolants, `[f(y0), f(y1)]` for cubic Hermite).
    pub k: Vec<S>,
}

/// A solution that can be evaluated anywhere in the solved span, from each step's own
/// interpolant (native for dopri5, tsit5, dopri8; cubic Hermite otherwise).
#[derive(Debug, Clone)]
pub struct DenseSolution<S> {
    /// The stepper whose interpolant is used.
    pub stepper: crate::stepper::MethodStepper,
    /// Accepted steps in order.
    pub steps: Vec<DenseStep<S>>,
}

impl<S: crate::state::State> DenseSolution<S> {
    /// The solved span `(start, end)` (in the direction of integration).
    pub fn span(&self) -> Option<(f64, f64)> {
        let (a, b) = (self.steps.first()?, self.steps.last()?);
        Some((a.t, b.t + b.h))
    }

    /// The solution at `t`; an error if `t` lies outside the solved span.
    pub fn eval(&self, t: f64) -> Result<S, crate::error::SolveError> {
        let outside = || crate::error::SolveError::InvalidTimes(format!("t = {t} is outside the solved span {:?}", self.span()));
        let (t0, t1) = self.span().ok_or_else(outside)?;
        let dir = if t1 >= t0 { 1.0 } else { -1.0 };
        if !(dir * (t - t0) >= 0.0 && dir * (t1 - t) >= 0.0) {
            return Err(outside());
        }
        let mut out = self.steps[0].y0.zeros_like();
        self.eval_into(t, &mut out);
        Ok(out)
    }

    /// The solution at `t` written into `out` (no allocation): `t` outside the span is clamped
    /// to its nearer end, which absorbs the rounding of stage times computed by another solve.
    /// Does nothing on an empty solution.
    pub fn eval_into(&self, t: f64, out: &mut S) {
        use crate::stepper::Stepper;
        let Some((t0, t1)) = self.span() else { return };
        let dir = if t1 >= t0 { 1.0 } else { -1.0 };
        let t = if dir * (t - t0) < 0.0 {
            t0
        } else if dir * (t - t1) > 0.0 {
            t1
        } else {
            t
        };
        // First step whose end is at or beyond t.
        let i = self.steps.partition_point(|s| dir * (s.t + s.h - t) < 0.0).min(self.steps.len() - 1);
        let st = &self.steps[i];
        if t == st.t + st.h {
            out.assign(&st.y1);
            return;
        }
        let theta = ((t - st.t) / st.h).clamp(0.0, 1.0);
        let arith = crate::lanes::StateArith::new();
        self.stepper.interpolate_stored(&arith, 0, theta, st.h, &st.y0, &st.y1, &st.k, out);
    }
}
