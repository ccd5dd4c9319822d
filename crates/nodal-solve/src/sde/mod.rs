//! Neural stochastic differential equations: `dy = f(t, y) dt + g(t, y) dW`.
//!
//! - [`terms`]: the contract with the equation ([`SdeTerms`]): drift, the diffusion times an
//!   increment, their vector-Jacobian products, optional Milstein corrections; noise shapes
//!   (diagonal, scalar, additive, general) and Ito / Stratonovich.
//! - [`neural_sde`]: a fused MLP drift with sigmoid or additive diffusions;
//!   [`dynamics_sde`]: any drift and diffusion [`crate::VjpDynamics`] as terms.
//! - [`brownian`]: seeded O(1)-memory paths queried in any order, and stored increments, on a
//!   [`counter_rng`] (Philox and ziggurat normals).
//! - [`scheme`] and the step formulas: Euler-Maruyama, three Ito Milstein forms, Stratonovich
//!   Milstein, Euler-Heun, Heun, midpoint, reversible Heun, SRA1, SRI ([`sri`]).
//! - [`solve`]: fixed-step solves on a grid; [`adaptive`]: adaptive Heun with an embedded
//!   error estimate; [`gradient`]: backprop, checkpointing, reversible
//!   Heun's exact adjoint; [`adjoint`]: the continuous stochastic adjoint.

pub mod adaptive;
pub mod adjoint;
pub mod brownian;
pub mod counter_rng;
pub mod dynamics_sde;
pub mod error;
pub mod gradient;
pub mod neural_sde;
pub mod scheme;
pub mod solve;
pub mod sri;
mod step;
pub mod terms;

pub use adaptive::{AdaptiveOptions, AdaptiveSolution, sde_solve_adaptive};
pub use brownian::{BrownianPath, SeededBrownian, StoredIncrements};
pub use dynamics_sde::DynamicsSde;
pub use error::SdeError;
pub use gradient::{DEFAULT_SDE_MAX_MEMORY, SdeGradMethod, SdeGradient, sde_gradient};
pub use neural_sde::{Diffusion, NeuralSde};
pub use scheme::{SCHEMES, Scheme};
pub use solve::{SdeGrid, SdeSolution, SdeStats, SdeSteps, StepTimes, sde_solve};
pub use step::check_scheme;
pub use terms::{Calculus, MilsteinForm, Noise, SdeTerms};
