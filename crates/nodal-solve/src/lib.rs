//! # nodal-solve
//!
//! Pure numerics behind nodal, with no machine-learning dependency: explicit Runge-Kutta
//! solvers driven by tableaus stored as data, step-size controllers, dense output, one
//! integration loop with typed failures and statistics, and a gradient engine (exact
//! backpropagation through the solver's steps, checkpointing, and the continuous adjoint).
//!
//! ```
//! use nodal_solve::{solve, tableau::DOPRI5, FnDynamics, RmsNorm, SolveOptions};
//! // dy/dt = -y, y(0) = 1 on [0, 1]
//! let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = -y[0]);
//! let opts = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-12);
//! let sol = solve(&mut f, &vec![1.0], &[0.0, 1.0], &opts, &RmsNorm).unwrap();
//! assert!((sol.ys[1][0] - (-1.0f64).exp()).abs() < 1e-9);
//! ```

pub mod controller;
pub mod dynamics;
pub mod error;
pub mod fastmath;
pub mod grad;
pub mod integrate;
pub mod jvp;
pub mod mlp;
mod mlp_jvp;
pub mod norm;
pub mod options;
pub mod per_sample;
pub mod regularise;
pub mod scalar;
pub mod solution;
pub mod state;
pub mod stats;
pub mod tableau;

pub use controller::PidController;
pub use dynamics::{Dynamics, FnDynamics, VjpDynamics};
pub use error::{SolveError, SolveFailure};
pub use integrate::{Record, integrate, solve, solve_dense};
pub use jvp::JvpDynamics;
pub use norm::{ErrorNorm, RmsNorm};
pub use options::{METHODS, SolveOptions, StepMode, method_by_name};
pub use scalar::Scalar;
pub use solution::{DenseSolution, Solution, Tape};
pub use state::State;
pub use stats::Stats;
pub use tableau::Tableau;
