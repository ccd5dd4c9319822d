//! Burn modules as SDE terms: `dy = f(t, y) dt + g(t, y) o dW` with `f` and `g` two
//! [`OdeFunc`] modules mapping `[rows, dim]` to `[rows, dim]` (diagonal noise: `g`'s output is
//! the per-component noise scale, so `g dW` is elementwise).
//!
//! This is [`DynamicsSde`] over two [`ModuleDynamics`]: evaluations run the modules' forward
//! passes on the plain device, vector-Jacobian products one reverse pass of burn's autodiff.
//! Milstein schemes solve forwards (the transposed form is one more VJP of `g`); their
//! gradients need second derivatives of the module and are a typed error (use a
//! derivative-free Stratonovich scheme, or Euler-Maruyama, to train).

use crate::neural_ode::OdeFunc;
use crate::neural_ode::module_dynamics::ModuleDynamics;
use burn::tensor::Device;
use nodal_solve::sde::DynamicsSde;

/// A drift module and a diffusion module as SDE terms (parameters: the drift's in burn's
/// visiting order, then the diffusion's).
pub type ModuleSde<T, F, G> = DynamicsSde<T, ModuleDynamics<F>, ModuleDynamics<G>>;

/// [`ModuleSde`] terms for states with rows of width `dim` on `device`.
pub fn module_sde<T: crate::neural_ode::module_dynamics::Element, F: OdeFunc, G: OdeFunc>(
    drift: &F,
    diffusion: &G,
    device: &Device,
    dim: usize,
) -> ModuleSde<T, F, G> {
    DynamicsSde::new(ModuleDynamics::new(drift, device, dim), ModuleDynamics::new(diffusion, device, dim), dim)
}
