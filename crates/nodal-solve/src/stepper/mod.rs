//! Steppers: one step of a method, its error estimate and its interpolant.
//!
//! A stepper is a stateless value; the loop ([`crate::integrate`]) owns time stepping and the
//! controller ([`crate::controller`]) owns step-size choices. Every method of a stepper works
//! on a block of lanes through [`Lanes`], so the same stepper serves joint and per-sample
//! solving. Explicit Runge-Kutta tableaus are one implementation ([`ExplicitRk`]); a new method
//! family (SDE, implicit) implements [`Stepper`] without touching the loop.

pub(crate) mod explicit_rk;

pub use explicit_rk::ExplicitRk;

use crate::implicit::{Esdirk, Rosenbrock};

use crate::lanes::{Evaluate, LaneArith, Lanes};

/// Reusable buffers of one step over a block of lanes.
///
/// `y` holds the block's states at the start of the step and `k[0]` their derivatives (the
/// loop fills both); the stepper writes the propagated states into `y1`. `ytmp` and `out` are
/// scratch (the loop writes interpolated outputs through `out`); `k[1..]` and `scratch` belong to
/// the stepper. `times` and `ratios` are per-lane scratch.
pub struct Workspace<B> {
    /// States at the start of the step.
    pub y: B,
    /// Propagated states.
    pub y1: B,
    /// Stage derivatives; `k[0] = f(t, y)`.
    pub k: Vec<B>,
    /// Scratch state.
    pub ytmp: B,
    /// Interpolated outputs.
    pub out: B,
    /// Stepper-owned extra buffers.
    pub scratch: Vec<B>,
    /// Per-lane stage times.
    pub times: Vec<f64>,
    /// Per-lane scratch ratios.
    pub ratios: Vec<f64>,
    /// Host buffers of implicit steppers (Newton iterates, Jacobians, factorisations), their
    /// per-lane failures and work counters; empty for explicit methods.
    pub host: crate::implicit::HostScratch,
}

impl<B> Workspace<B> {
    /// Buffers for a stepper with `stages` derivative slots and `scratch` extra buffers.
    pub fn new(stages: usize, scratch: usize, lanes: usize, mut buf: impl FnMut() -> B) -> Self {
        Self {
            y: buf(),
            y1: buf(),
            k: (0..stages.max(1)).map(|_| buf()).collect(),
            ytmp: buf(),
            out: buf(),
            scratch: (0..scratch).map(|_| buf()).collect(),
            times: Vec::with_capacity(lanes),
            ratios: Vec::with_capacity(lanes),
            host: crate::implicit::HostScratch::default(),
        }
    }
}

/// One step of a numerical method over a block of lanes. See the module docs.
///
/// In every method, `ts[j]` and `hs[j]` are the start time and signed step of block lane `j`,
/// and the block has `ts.len()` lanes. Methods return the number of evaluations of the
/// dynamics they made per lane.
pub trait Stepper {
    /// Short name (`"dopri5"`).
    fn name(&self) -> &'static str;

    /// Order of the propagated solution (the controller's exponent).
    fn order(&self) -> u32;

    /// Whether the step comes with a local error estimate (needed by adaptive control).
    fn has_error_estimate(&self) -> bool;

    /// Derivative slots and extra scratch buffers the stepper's [`Workspace`] needs.
    fn buffers(&self) -> (usize, usize);

    /// Buffers for `lanes`.
    fn workspace<L: Lanes>(&self, lanes: &L) -> Workspace<L::Buf> {
        let (k, scratch) = self.buffers();
        Workspace::new(k, scratch, lanes.count(), || lanes.buf())
    }

    /// Advance the block from `ws.y` (with `ws.k[0] = f(t, y)`) to `ws.y1`.
    fn step<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize;

    /// Error ratios of the step just taken into `out` (one per block lane); 0 without an estimate.
    fn error_ratios<L: Lanes>(&self, lanes: &L, ws: &mut Workspace<L::Buf>, hs: &[f64], rtol: f64, atol: f64, out: &mut [f64]);

    /// Make the interpolant of the step just taken available (extra stages, `f(t1, y1)`).
    fn prepare_dense<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize;

    /// The interpolant of block lane `j` at `theta` in `(0, 1)` into `ws.out` (after
    /// [`Stepper::prepare_dense`]).
    fn interpolate<A: LaneArith>(&self, arith: &A, ws: &mut Workspace<A::Buf>, j: usize, theta: f64, h: f64);

    /// Slot of `ws.k` holding `f(t1, y1)` after the step (FSAL methods), or after
    /// [`Stepper::prepare_dense`] when `dense_ready`; the next step reuses it.
    fn end_derivative(&self, dense_ready: bool) -> Option<usize>;

    /// Slots of `ws.k` a stored dense step keeps (after [`Stepper::prepare_dense`]), in order.
    fn dense_slots(&self, out: &mut Vec<usize>);

    /// Interpolate a stored dense step: `ks` are the slots of [`Stepper::dense_slots`], `j` the
    /// lane of the buffers.
    #[allow(clippy::too_many_arguments)]
    fn interpolate_stored<A: LaneArith>(
        &self,
        arith: &A,
        j: usize,
        theta: f64,
        h: f64,
        y0: &A::Buf,
        y1: &A::Buf,
        ks: &[A::Buf],
        out: &mut A::Buf,
    );
}

/// Any built-in method's stepper, chosen at run time (what [`crate::SolveOptions::stepper`]
/// builds): the explicit Runge-Kutta tableaus and the implicit methods.
#[derive(Debug, Clone, Copy)]
pub enum MethodStepper {
    /// An explicit Runge-Kutta tableau.
    Explicit(ExplicitRk),
    /// An ESDIRK method.
    Esdirk(Esdirk),
    /// A Rosenbrock method.
    Rosenbrock(Rosenbrock),
}

macro_rules! each_stepper {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            MethodStepper::Explicit($s) => $e,
            MethodStepper::Esdirk($s) => $e,
            MethodStepper::Rosenbrock($s) => $e,
        }
    };
}

impl Stepper for MethodStepper {
    fn name(&self) -> &'static str {
        each_stepper!(self, s => s.name())
    }
    fn order(&self) -> u32 {
        each_stepper!(self, s => s.order())
    }
    fn has_error_estimate(&self) -> bool {
        each_stepper!(self, s => s.has_error_estimate())
    }
    fn buffers(&self) -> (usize, usize) {
        each_stepper!(self, s => s.buffers())
    }
    fn step<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        each_stepper!(self, s => s.step(lanes, ws, ts, hs))
    }
    fn error_ratios<L: Lanes>(&self, lanes: &L, ws: &mut Workspace<L::Buf>, hs: &[f64], rtol: f64, atol: f64, out: &mut [f64]) {
        each_stepper!(self, s => s.error_ratios(lanes, ws, hs, rtol, atol, out))
    }
    fn prepare_dense<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        each_stepper!(self, s => s.prepare_dense(lanes, ws, ts, hs))
    }
    fn interpolate<A: LaneArith>(&self, arith: &A, ws: &mut Workspace<A::Buf>, j: usize, theta: f64, h: f64) {
        each_stepper!(self, s => s.interpolate(arith, ws, j, theta, h))
    }
    fn end_derivative(&self, dense_ready: bool) -> Option<usize> {
        each_stepper!(self, s => s.end_derivative(dense_ready))
    }
    fn dense_slots(&self, out: &mut Vec<usize>) {
        each_stepper!(self, s => s.dense_slots(out))
    }
    fn interpolate_stored<A: LaneArith>(
        &self,
        arith: &A,
        j: usize,
        theta: f64,
        h: f64,
        y0: &A::Buf,
        y1: &A::Buf,
        ks: &[A::Buf],
        out: &mut A::Buf,
    ) {
        each_stepper!(self, s => s.interpolate_stored(arith, j, theta, h, y0, y1, ks, out))
    }
}
