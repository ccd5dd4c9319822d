//! # nodal
//!
//! Neural differential equations in Rust: the burn side of the project (problem files,
//! experiments, and the modules that wrap networks as dynamics), on top of the pure-numerics
//! crate [`nodal_solve`], re-exported here as [`solve`].

pub use burn;
pub use nodal_solve as solve;

pub mod adam;
pub mod io;
pub mod mnist;
pub mod neural_ode;
pub mod problem;
pub mod rmsprop;
pub mod spiral;
pub mod tensor_state;
pub mod toy;
