//! # nodal-experiments
//!
//! The experiments behind nodal's command line, built on the `nodal` library: torchdiffeq's
//! spiral demo ([`spiral`]), the MNIST models of Chen et al. 2018 ([`mnist`]), the toy flows of
//! Dupont et al. 2019 ([`toy`]) and the shared reference problem files ([`problem`]). The
//! optimisers ([`adam`], [`rmsprop`]) update the fused MLP's flat parameters.

#![deny(missing_docs)]

pub use nodal;
pub use nodal::solve;

pub mod adam;
pub mod mnist;
pub mod problem;
pub mod rmsprop;
pub mod spiral;
pub mod toy;
