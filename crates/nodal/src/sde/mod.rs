//! Neural SDEs on any burn module.
//!
//! - [`ModuleSde`] makes a drift module and a diffusion module into the solver core's
//!   [`SdeTerms`](nodal_solve::sde::SdeTerms), so every scheme, Brownian path and gradient
//!   method of [`nodal_solve::sde`] applies to them.
//! - [`sde_solve_tensor`] steps [`TensorSdeTerms`] on burn tensors, so that burn's autodiff
//!   differentiates the unrolled solve (terms that read other tensors of the graph, such as a
//!   latent SDE's encoder context).
//! - [`PathKl`] appends the KL divergence between a posterior and a prior SDE as an extra state
//!   (Li et al. 2020), the ELBO's path term.

mod module_sde;
mod path_kl;
mod tensor_solve;

pub use module_sde::{ModuleSde, module_sde};
pub use path_kl::{PathKl, PosteriorPrior};
pub use tensor_solve::{TENSOR_SCHEMES, TensorSdeTerms, sde_solve_tensor};
