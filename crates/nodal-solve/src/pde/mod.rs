//! PDEs as layers by the method of lines: a field on a grid is the ODE state, spatial
//! derivatives are fixed convolutions whose padding is the boundary condition ([`grid`]), and
//! learned terms are small networks inside the right-hand side. Every model here is a
//! [`crate::VjpDynamics`], so any solver (the stiff ones of [`crate::implicit`] in particular:
//! diffusion makes these systems stiff) and any gradient method of [`crate::grad`] apply.
//!
//! - [`reaction_diffusion`]: `u_t = D Laplacian(u) + R(u)` in 1-D or 2-D, with Fisher-KPP's
//!   reaction or a learned pointwise network.
//! - [`burgers`]: viscous Burgers on a periodic line with central or learned convection, and the
//!   Cole-Hopf exact solutions.

pub mod burgers;
pub mod grid;
pub mod reaction_diffusion;

pub use burgers::{Burgers, Convection, cole_hopf};
pub use grid::{Axis, Boundary, Grid};
pub use reaction_diffusion::{PointwiseMlp, Reaction, ReactionDiffusion};
