//! Step-size controllers: they own the tolerances, the step bounds and the choice of the first
//! step, see error ratios, and never call the solver.
//!
//! - [`ConstantStep`]: steps of one size on the grid `t0 + m h` (computed by multiplication, so
//!   no drift over many steps);
//! - [`Adaptive`]: error-controlled steps with a [`PidController`] factor (I, PI or PID), Hairer's
//!   initial step ([`initial_step`]) unless a first step is given;
//! - [`StepControl`]: either of the two, chosen at run time (what [`crate::SolveOptions`] builds).
//!
//! A new controller implements [`Controller`]; the loop ([`crate::integrate`]) needs nothing else.

mod initial_step;
mod pid;

pub use initial_step::initial_step;
pub use pid::PidController;

use crate::error::SolveError;

/// The outcome of one step's error ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Keep the step.
    pub accept: bool,
    /// Multiply the step's magnitude by this for the next attempt.
    pub factor: f64,
}

/// What the loop asks of a step-size controller. `Memory` is the per-lane state it keeps
/// (an error history, a grid index).
pub trait Controller {
    /// Per-lane memory.
    type Memory: Clone;

    /// Fresh memory for a lane.
    fn memory(&self) -> Self::Memory;

    /// Whether steps are error controlled (then non-finite steps are rejected and retried,
    /// and steps below [`Controller::dt_min`] fail); otherwise any non-finite step fails.
    fn is_adaptive(&self) -> bool;

    /// `(rtol, atol)` the error ratios are scaled by.
    fn tolerances(&self) -> (f64, f64);

    /// The first step's magnitude, or `None` to have it estimated ([`initial_step`]).
    fn first_step(&self) -> Option<f64>;

    /// Smallest admissible step magnitude.
    fn dt_min(&self) -> f64 {
        0.0
    }

    /// The signed step a lane at `t` (started at `t0`, direction `dir`, last magnitude `h`)
    /// proposes, before it is shortened to land on a stop.
    fn propose(&self, memory: &mut Self::Memory, t0: f64, t: f64, dir: f64, h: f64) -> f64;

    /// Accept or reject a step from its error ratio (`NaN` when the step was not finite) for a
    /// method of order `order`; update the memory.
    fn decide(&self, memory: &mut Self::Memory, ratio: f64, order: u32) -> Decision;

    /// Check the settings.
    fn validate(&self) -> Result<(), SolveError>;
}

/// Steps of size `h` from `t0`: the grid `t0 + m h`, the last step shortened to end on the stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstantStep {
    /// Step magnitude.
    pub h: f64,
}

impl Controller for ConstantStep {
    /// Index of the next grid point.
    type Memory = usize;
    fn memory(&self) -> usize {
        0
    }
    fn is_adaptive(&self) -> bool {
        false
    }
    fn tolerances(&self) -> (f64, f64) {
        (0.0, 0.0)
    }
    fn first_step(&self) -> Option<f64> {
        Some(self.h)
    }
    fn propose(&self, index: &mut usize, t0: f64, t: f64, dir: f64, _h: f64) -> f64 {
        *index += 1;
        t0 + dir * self.h * *index as f64 - t
    }
    fn decide(&self, _: &mut usize, _ratio: f64, _order: u32) -> Decision {
        Decision { accept: true, factor: 1.0 }
    }
    fn validate(&self) -> Result<(), SolveError> {
        if self.h.is_finite() && self.h > 0.0 {
            Ok(())
        } else {
            Err(SolveError::InvalidStep(format!("fixed step size must be positive and finite, got {}", self.h)))
        }
    }
}

/// Error-controlled steps: tolerances, a PID factor, bounds on the step and the first step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// The factor formula.
    pub pid: PidController,
    /// First step magnitude; `None` for Hairer's estimate (one extra evaluation).
    pub first_step: Option<f64>,
    /// Smallest admissible step magnitude; below it the lane fails.
    pub dt_min: f64,
    /// Largest step magnitude.
    pub dt_max: f64,
}

impl Controller for Adaptive {
    /// Error ratios `[r_n, r_{n-1}, r_{n-2}]` of the last accepted steps.
    type Memory = [f64; 3];
    fn memory(&self) -> [f64; 3] {
        [1.0; 3]
    }
    fn is_adaptive(&self) -> bool {
        true
    }
    fn tolerances(&self) -> (f64, f64) {
        (self.rtol, self.atol)
    }
    fn first_step(&self) -> Option<f64> {
        self.first_step.map(f64::abs)
    }
    fn dt_min(&self) -> f64 {
        self.dt_min
    }
    fn propose(&self, _: &mut [f64; 3], _t0: f64, _t: f64, dir: f64, h: f64) -> f64 {
        dir * h.min(self.dt_max)
    }
    fn decide(&self, history: &mut [f64; 3], ratio: f64, order: u32) -> Decision {
        if !ratio.is_finite() {
            return Decision { accept: false, factor: self.pid.factor_min };
        }
        let accept = ratio <= 1.0;
        let hist = [ratio, history[0], history[1]];
        let factor = self.pid.factor(hist, order, accept);
        if accept {
            *history = hist;
        }
        Decision { accept, factor }
    }
    fn validate(&self) -> Result<(), SolveError> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(self.rtol) || !ok(self.atol) || (self.rtol == 0.0 && self.atol == 0.0) {
            return Err(SolveError::InvalidTolerance { rtol: self.rtol, atol: self.atol });
        }
        if self.dt_max.is_nan() || self.dt_max <= 0.0 || self.dt_min.is_nan() || self.dt_min < 0.0 {
            return Err(SolveError::InvalidStep(format!(
                "need 0 <= dt_min and dt_max > 0, got dt_min = {}, dt_max = {}",
                self.dt_min, self.dt_max
            )));
        }
        Ok(())
    }
}

/// A constant or adaptive controller chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepControl {
    /// Error-controlled steps.
    Adaptive(Adaptive),
    /// Constant steps.
    Constant(ConstantStep),
}

/// Memory of a [`StepControl`] lane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepMemory {
    /// Of an adaptive lane.
    Adaptive([f64; 3]),
    /// Of a constant-step lane.
    Constant(usize),
}

impl Controller for StepControl {
    type Memory = StepMemory;
    fn memory(&self) -> StepMemory {
        match self {
            Self::Adaptive(c) => StepMemory::Adaptive(c.memory()),
            Self::Constant(c) => StepMemory::Constant(c.memory()),
        }
    }
    fn is_adaptive(&self) -> bool {
        matches!(self, Self::Adaptive(_))
    }
    fn tolerances(&self) -> (f64, f64) {
        match self {
            Self::Adaptive(c) => c.tolerances(),
            Self::Constant(c) => c.tolerances(),
        }
    }
    fn first_step(&self) -> Option<f64> {
        match self {
            Self::Adaptive(c) => c.first_step(),
            Self::Constant(c) => c.first_step(),
        }
    }
    fn dt_min(&self) -> f64 {
        match self {
            Self::Adaptive(c) => c.dt_min(),
            Self::Constant(c) => c.dt_min(),
        }
    }
    #[inline]
    fn propose(&self, memory: &mut StepMemory, t0: f64, t: f64, dir: f64, h: f64) -> f64 {
        match (self, memory) {
            (Self::Adaptive(c), StepMemory::Adaptive(m)) => c.propose(m, t0, t, dir, h),
            (Self::Constant(c), StepMemory::Constant(m)) => c.propose(m, t0, t, dir, h),
            _ => unreachable!("memory made by this controller"),
        }
    }
    #[inline]
    fn decide(&self, memory: &mut StepMemory, ratio: f64, order: u32) -> Decision {
        match (self, memory) {
            (Self::Adaptive(c), StepMemory::Adaptive(m)) => c.decide(m, ratio, order),
            (Self::Constant(c), StepMemory::Constant(m)) => c.decide(m, ratio, order),
            _ => unreachable!("memory made by this controller"),
        }
    }
    fn validate(&self) -> Result<(), SolveError> {
        match self {
            Self::Adaptive(c) => c.validate(),
            Self::Constant(c) => c.validate(),
        }
    }
}
