//! # nodal
//!
//! Neural differential equations on burn: [`neural_ode::NeuralOde`] turns any burn module into
//! a layer whose output is the solution of `dy/dt = f(y(t), t, theta)`, joining burn's autodiff
//! graph as one node (exact gradients through the solver, checkpointing or the continuous
//! adjoint); [`sde`] makes burn modules neural SDEs (the solver core's schemes and gradients, or
//! solves on burn tensors with the path KL of latent SDEs); [`tensor_state`] makes burn tensors a
//! solver state; [`io`] and [`module_weights`] read and write weights atomically. The numerics live in the pure crate [`nodal_solve`], re-exported here as
//! [`solve`]; the experiments the command line runs (spiral, MNIST, toys, problem files) are in
//! the `nodal-experiments` crate.

#![deny(missing_docs)]

pub use burn;
pub use nodal_formats::io;
pub use nodal_solve as solve;

pub mod activation;
pub mod backend;
pub mod blocks;
pub mod cnf;
pub mod deq;
pub mod jvp;
pub mod kernels;
pub mod module_weights;
pub mod neural_ode;
pub mod sde;
pub mod tensor_state;
pub mod testing;
