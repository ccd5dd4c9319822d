//! Neural SDEs on any burn module: [`ModuleSde`] makes a drift module and a diffusion module
//! into the solver core's [`SdeTerms`](nodal_solve::sde::SdeTerms), so every scheme, Brownian
//! path and gradient method of [`nodal_solve::sde`] applies to them.

mod module_sde;

pub use module_sde::{ModuleSde, module_sde};
