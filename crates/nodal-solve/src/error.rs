//! Typed failures of a solve. Each carries the context a user needs to act on it.

use thiserror::Error;

/// Why a solve could not produce a solution.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SolveError {
    /// The adaptive step size fell below `dt_min` or below the resolution of `t` (the solution
    /// is likely blowing up or the problem is stiff).
    #[error("step size underflow at t = {t:e}: step {h:e} is below the minimum {min:e}")]
    StepSizeUnderflow {
        /// Time reached.
        t: f64,
        /// Step size that was rejected as too small.
        h: f64,
        /// The smallest admissible step there.
        min: f64,
    },
    /// The first step rounds to zero (or is not finite): `f(t0, y0)` is too large for the float
    /// type, or the solution blows up at once.
    #[error(
        "no first step is possible at t = {t:e}: it rounds to {h:e} (|f(t0, y0)| is too large for the float type, or the solution blows up at once)"
    )]
    NoFirstStep {
        /// Start time.
        t: f64,
        /// The first step proposed.
        h: f64,
    },
    /// An implicit method could not compute a step down to the minimum step size (or at the
    /// fixed step size): its Newton iteration diverged or stalled, or its linear solve failed.
    #[error("implicit step failed at t = {t:e} with step {h:e}: {reason}")]
    ImplicitStep {
        /// Time reached.
        t: f64,
        /// Step size of the last attempt.
        h: f64,
        /// What failed, with iteration counts and residuals.
        reason: String,
    },
    /// `max_steps` steps (accepted plus rejected) were taken before the end of the span.
    #[error("maximum number of steps ({max_steps}) reached at t = {t:e} before the end of the span")]
    MaxStepsExceeded {
        /// Time reached.
        t: f64,
        /// The limit.
        max_steps: usize,
    },
    /// The state or its derivative contains NaN or infinity.
    #[error("non-finite {what} at t = {t:e} (step {step}, step size {h:e})")]
    NonFinite {
        /// `"initial state"`, `"derivative"` or `"state"`.
        what: &'static str,
        /// Time of the offending evaluation.
        t: f64,
        /// Step size in use.
        h: f64,
        /// Number of steps taken so far.
        step: usize,
    },
    /// What the solve stores (gradient tape, dense output, step records, outputs) would exceed
    /// [`crate::Limits::max_memory`].
    #[error("{what} would need more than the memory limit of {limit} bytes (at t = {t:e}, step {step}); {hint}")]
    MemoryLimit {
        /// What was being stored.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
        /// Time reached.
        t: f64,
        /// Steps accepted so far.
        step: usize,
        /// What to do about it.
        hint: &'static str,
    },
    /// Relative and absolute tolerances must be finite, non-negative and not both zero.
    #[error("invalid tolerances: rtol = {rtol:e}, atol = {atol:e} (need finite, >= 0, not both 0)")]
    InvalidTolerance {
        /// Relative tolerance given.
        rtol: f64,
        /// Absolute tolerance given.
        atol: f64,
    },
    /// Output times are empty, non-finite or not strictly monotone.
    #[error("invalid output times: {0}")]
    InvalidTimes(String),
    /// A fixed step size is missing, non-positive or non-finite, or a fixed-step method was
    /// asked to adapt.
    #[error("invalid step configuration: {0}")]
    InvalidStep(String),
    /// An event's function is flat in time at its root (`dg/dt = ∂g/∂t + ∂g/∂y · f = 0`), so its
    /// time has no derivative (the trajectory grazes the event surface).
    #[error("event {event} at t = {t:e} is tangential (dg/dt = {slope:e}): its time is not differentiable there")]
    EventTangent {
        /// Which event function.
        event: usize,
        /// The event time.
        t: f64,
        /// `dg/dt` along the trajectory at the event.
        slope: f64,
    },
    /// Shapes of inputs disagree.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// The regularisers asked for cannot be set up (see [`crate::regularise`]).
    #[error("regulariser: {0}")]
    Regulariser(#[from] crate::regularise::RegulariseError),
}

/// A failed solve: the error, and the solution up to the failure (outputs reached so far).
#[derive(Debug, Clone)]
pub struct SolveFailure<S> {
    /// What went wrong.
    pub error: SolveError,
    /// Outputs computed before the failure (possibly only `y0`).
    pub partial: crate::solution::Solution<S>,
}

impl<S> std::fmt::Display for SolveFailure<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} of the requested outputs computed)", self.error, self.partial.ys.len())
    }
}

impl<S: std::fmt::Debug> std::error::Error for SolveFailure<S> {}

/// What a joint solve returns: the solution and `X` (a tape, a dense solution, a backward
/// handle), or the failure with the partial solution.
pub type SolveResult<S, X> = Result<(crate::solution::Solution<S>, X), Box<SolveFailure<S>>>;
