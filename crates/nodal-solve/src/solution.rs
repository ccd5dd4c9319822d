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
}
