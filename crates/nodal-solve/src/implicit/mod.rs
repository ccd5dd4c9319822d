//! Implicit methods for stiff systems.
//!
//! A system is stiff when stability, not accuracy, limits an explicit method's step: a
//! method-of-lines diffusion term forces `h < dx^2 / (2 D)` on explicit Runge-Kutta however
//! smooth the solution, and chemical kinetics mix time scales twelve orders apart. The methods
//! here are L-stable, so their steps follow the solution's accuracy alone:
//!
//! | method | family | order (error estimate) | stages | per step |
//! |---|---|---|---|---|
//! | `kvaerno3` | ESDIRK (Kvaerno 2004) | 3 (2) | 4 | 3 Newton solves, Jacobian kept while Newton converges fast |
//! | `kvaerno5` | ESDIRK (Kvaerno 2004) | 5 (4) | 7 | 6 Newton solves, Jacobian kept while Newton converges fast |
//! | `rodas5` | Rosenbrock (Di Marzo 1993) | 5 (4) | 8 | 8 linear solves, no Newton; Jacobian every step |
//!
//! Each is a [`crate::Stepper`], so the one integration loop drives it: joint and per-sample
//! lanes, output times, stops, dense output, memory limits and typed failures all come for free.
//! The Newton and linear-algebra work happens on host `f64` copies of the block's lanes
//! ([`host`]); the linear systems `(I - h gamma J) x = b` are solved densely (forward-difference
//! Jacobian, one evaluation per state entry, LU with partial pivoting) or matrix-free
//! ([`LinearSolver::Krylov`]: GMRES on forward-difference Jacobian-vector products, one
//! evaluation per Krylov iteration, no preconditioner) for large states such as PDE grids.
//!
//! A step whose Newton iteration diverges, stalls or meets a singular matrix is retried at a
//! quarter of the step (after one retry with a fresh Jacobian if an older one was used); when
//! the step falls below the minimum, the solve fails with
//! [`crate::SolveError::ImplicitStep`], which says why.

mod esdirk;
pub mod host;
pub mod linalg;
mod rosenbrock;
pub mod tableaus;

pub use esdirk::{Esdirk, REUSE_RATE};
pub use host::{HostScratch, StepFailure, StepWork};
pub use rosenbrock::Rosenbrock;

use crate::lanes::LaneArith;

/// How the linear systems `(I - h gamma J) x = b` of an implicit step are solved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinearSolver {
    /// Dense forward-difference Jacobian (`n` evaluations) and LU: for states up to a few
    /// hundred entries.
    Dense,
    /// Matrix-free restarted GMRES on forward-difference Jacobian-vector products
    /// (Jacobian-free Newton-Krylov; no preconditioner).
    Krylov {
        /// Krylov vectors kept before a restart.
        restart: usize,
        /// Most Krylov iterations per linear solve.
        max_iterations: usize,
        /// Relative residual at which GMRES stops.
        tolerance: f64,
    },
}

impl LinearSolver {
    /// Krylov mode with restart 30, at most 300 iterations, relative residual 1e-6.
    pub const fn krylov() -> Self {
        Self::Krylov { restart: 30, max_iterations: 300, tolerance: 1e-6 }
    }
}

/// Settings of the nonlinear and linear solves inside implicit steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImplicitSettings {
    /// Dense LU or matrix-free GMRES.
    pub linear: LinearSolver,
    /// Newton stops when the estimated remaining error of a stage, in units of the error
    /// tolerance, is below this (default 0.03; smaller for gradients checked against finite
    /// differences).
    pub newton_tol: f64,
    /// Most Newton iterations per stage before the step is retried smaller (default 10).
    pub max_newton: usize,
    /// Keep an ESDIRK Jacobian across steps while Newton converges fast on it (default true).
    pub reuse_jacobian: bool,
}

impl Default for ImplicitSettings {
    fn default() -> Self {
        Self { linear: LinearSolver::Dense, newton_tol: 0.03, max_newton: 10, reuse_jacobian: true }
    }
}

/// The implicit methods, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplicitMethod {
    /// Kvaerno's 3(2) ESDIRK.
    Kvaerno3,
    /// Kvaerno's 5(4) ESDIRK.
    Kvaerno5,
    /// Di Marzo's Rodas5 Rosenbrock method.
    Rodas5,
}

impl ImplicitMethod {
    /// Every implicit method.
    pub const ALL: [Self; 3] = [Self::Kvaerno3, Self::Kvaerno5, Self::Rodas5];

    /// Its name (`"kvaerno5"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvaerno3 => tableaus::KVAERNO3.name,
            Self::Kvaerno5 => tableaus::KVAERNO5.name,
            Self::Rodas5 => tableaus::RODAS5.name,
        }
    }

    /// The method called `name`, if any.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Order of the propagated solution.
    pub fn order(self) -> u32 {
        match self {
            Self::Kvaerno3 => 3,
            Self::Kvaerno5 | Self::Rodas5 => 5,
        }
    }
}

/// An implicit method with its settings (what [`crate::SolveOptions::implicit`] holds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Implicit {
    /// The method.
    pub method: ImplicitMethod,
    /// Newton and linear-solver settings.
    pub settings: ImplicitSettings,
}

/// Cubic Hermite interpolation of lane `j` through `y0, k0 = f(y0), y1, f1 = f(y1)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hermite_lane<A: LaneArith>(
    arith: &A,
    j: usize,
    theta: f64,
    h: f64,
    y0: &A::Buf,
    y1: &A::Buf,
    k0: &A::Buf,
    f1: &A::Buf,
    out: &mut A::Buf,
) {
    let [h00, h10, h01, h11] = crate::stepper::explicit_rk::hermite_basis(theta);
    arith.combine4_lane(j, out, [h00, h01, h * h10, h * h11], [y0, y1, k0, f1]);
}
