//! nodal's file formats, apart from the numerics and from burn so that they can be fuzzed on
//! their own: every reader takes bytes with a size cap and returns a typed error naming the file
//! and the field; every writer is atomic.
//!
//! - [`io`]: capped reads, atomic writes, safetensors f32 tensors.
//! - [`idx`]: the IDX files of MNIST.
//! - [`problem`]: MLP problem files (the format of the shared reference vectors).

#![deny(missing_docs)]

pub mod idx;
pub mod io;
pub mod problem;
pub mod sde_problem;
