//! # nodal-solve
//!
//! Pure numerics behind nodal, with no machine-learning dependency: explicit Runge-Kutta
//! solvers driven by tableaus stored as data, implicit methods for stiff systems
//! ([`implicit`]: Kvaerno ESDIRK with Newton, Rodas5, dense or matrix-free linear algebra),
//! step-size controllers, dense output, one integration loop with typed failures,
//! statistics and events ([`events`]: terminal, jumping or recorded, with differentiable event
//! times), a gradient engine (exact backpropagation through the solver's steps, implicit
//! ones included, checkpointing, and the continuous adjoint), method-of-lines PDE layers
//! ([`pde`]) and the stiff test problems ([`stiff_problems`]).
//!
//! ```
//! use nodal_solve::{solve, tableau::DOPRI5, FnDynamics, RmsNorm, SolveOptions};
//! // dy/dt = -y, y(0) = 1 on [0, 1]
//! let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = -y[0]);
//! let opts = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-12);
//! let sol = solve(&mut f, &vec![1.0], &[0.0, 1.0], &opts, &RmsNorm).unwrap();
//! assert!((sol.ys[1][0] - (-1.0f64).exp()).abs() < 1e-9);
//! ```

#![deny(missing_docs)]

pub mod cnf_mlp;
pub mod controller;
pub mod dynamics;
pub mod error;
pub mod events;
pub mod fastmath;
pub mod fixed_point;
pub mod grad;
pub mod implicit;
pub mod integrate;
pub mod jvp;
pub mod lanes;
pub mod mlp;
mod mlp_jvp;
mod mlp_narrow;
pub mod norm;
pub mod options;
pub mod pde;
pub mod per_sample;
pub mod regularise;
pub mod save_at;
pub mod scalar;
pub mod sde;
pub mod solution;
pub mod state;
pub mod stats;
pub mod stepper;
pub mod stiff_problems;
pub mod tableau;
pub mod thin_gemm;
pub mod vector_tanh;

pub use controller::{Adaptive, ConstantStep, Controller, PidController, StepControl};
pub use dynamics::{Dynamics, FnDynamics, VjpDynamics};
pub use error::{SolveError, SolveFailure};
pub use implicit::{Implicit, ImplicitMethod, ImplicitSettings, LinearSolver};
pub use integrate::{LaneResult, Limits, Record, check_times, diffeqsolve, diffeqsolve_with_events, solve, solve_dense, solve_recorded};
pub use jvp::JvpDynamics;
pub use lanes::{Joint, Lanes, Rows};
pub use norm::{ColumnGroupsNorm, ErrorNorm, NormChoice, RmsNorm};
pub use options::{DEFAULT_MAX_MEMORY, METHODS, SolveOptions, StepMode, method_by_name};
pub use save_at::SaveAt;
pub use scalar::Scalar;
pub use solution::{DenseSolution, Solution, Tape};
pub use state::State;
pub use stats::Stats;
pub use stepper::{ExplicitRk, MethodStepper, Stepper};
pub use tableau::Tableau;
