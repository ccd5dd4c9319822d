//! Typed failures of SDE solves, their Brownian paths and gradients.

use thiserror::Error;

/// Why an SDE solve, Brownian query or gradient could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SdeError {
    /// A time outside the Brownian path's span.
    #[error("Brownian path queried at t = {t:e}, outside its span [{t0:e}, {t1:e}]")]
    OutOfRange {
        /// The time asked for.
        t: f64,
        /// Start of the span.
        t0: f64,
        /// End of the span.
        t1: f64,
    },
    /// A stored-increment path queried off its grid.
    #[error(
        "stored Brownian increments queried at t = {t:e}, which is not on their grid t0 + k dt (t0 = {t0:e}, dt = {dt:e}, k = 0..={steps})"
    )]
    OffGrid {
        /// The time asked for.
        t: f64,
        /// Grid start.
        t0: f64,
        /// Grid step.
        dt: f64,
        /// Number of stored steps.
        steps: usize,
    },
    /// The state became NaN or infinite.
    #[error("non-finite state at t = {t:e} (step {step}, step size {dt:e}); a smaller step or a bounded diffusion may help")]
    NonFinite {
        /// Time reached.
        t: f64,
        /// Steps taken.
        step: usize,
        /// Step size.
        dt: f64,
    },
    /// An adaptive step fell below its minimum (the solution is likely blowing up).
    #[error("adaptive SDE step size underflow at t = {t:e}: step {h:e} is below the minimum {min:e}")]
    StepSizeUnderflow {
        /// Time reached.
        t: f64,
        /// The step proposed.
        h: f64,
        /// The minimum.
        min: f64,
    },
    /// An adaptive solve took its maximum number of steps.
    #[error("adaptive SDE solve reached its maximum of {max_steps} steps at t = {t:e}")]
    MaxSteps {
        /// Time reached.
        t: f64,
        /// The limit.
        max_steps: usize,
    },
    /// Sizes of the state, the noise, the parameters or a buffer disagree.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An argument is invalid (step size, span, output steps, scheme for this noise).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The scheme, gradient method or path cannot serve this request (e.g. Milstein on a
    /// diffusion without the needed derivatives; the continuous adjoint of an Ito scheme).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// What the solve would store exceeds the memory limit.
    #[error("{what} would need {need} bytes, more than the limit of {limit}; {hint}")]
    MemoryLimit {
        /// What was to be stored.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// The limit.
        limit: usize,
        /// What to do about it.
        hint: &'static str,
    },
}
