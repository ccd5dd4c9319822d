//! Burn modules as SDE terms: `dy = f(t, y) dt + g(t, y) o dW` with `f` and `g` two
//! [`OdeFunc`] modules mapping `[rows, dim]` to `[rows, dim]` (diagonal noise: `g`'s output is
//! the per-component noise scale, so `g dW` is elementwise).
//!
//! Evaluations run the modules' forward passes on the plain device; vector-Jacobian products
//! run one reverse pass of burn's autodiff ([`ModuleDynamics`]). The product `g dW`'s VJP is
//! the module's VJP with cotangent `a * dW`. The transposed-form Milstein correction
//! `1/2 sum_j (dg_j/dy_i) g_j q_j` is one more VJP of `g`; its own derivative would need second
//! derivatives of the module, so Milstein schemes on modules solve forwards but report
//! [`SdeError::Unsupported`] for gradients (use a derivative-free Stratonovich scheme, or
//! Euler-Maruyama, to train).

use crate::neural_ode::OdeFunc;
use crate::neural_ode::module_dynamics::{Element, ModuleDynamics, num_params};
use burn::tensor::Device;
use nodal_solve::sde::{MilsteinForm, Noise, SdeError, SdeTerms};
use nodal_solve::{Dynamics, VjpDynamics};

/// A drift module and a diffusion module as [`SdeTerms`]. Parameters: the drift's (in burn's
/// visiting order), then the diffusion's.
pub struct ModuleSde<F, G> {
    drift: ModuleDynamics<F>,
    diffusion: ModuleDynamics<G>,
    dim: usize,
    drift_params: usize,
    diffusion_params: usize,
}

impl<F: OdeFunc, G: OdeFunc> ModuleSde<F, G> {
    /// Terms for states with rows of width `dim` on `device`.
    pub fn new(drift: &F, diffusion: &G, device: &Device, dim: usize) -> Self {
        Self {
            drift: ModuleDynamics::new(drift, device, dim),
            diffusion: ModuleDynamics::new(diffusion, device, dim),
            dim,
            drift_params: num_params(drift),
            diffusion_params: num_params(diffusion),
        }
    }

    /// Number of drift parameters (the first block of the flat gradient).
    pub fn drift_params(&self) -> usize {
        self.drift_params
    }
}

impl<F: OdeFunc, G: OdeFunc, T: Element> SdeTerms<T> for ModuleSde<F, G> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn channels(&self) -> usize {
        self.dim
    }
    fn noise(&self) -> Noise {
        Noise::Diagonal
    }
    fn num_params(&self) -> usize {
        self.drift_params + self.diffusion_params
    }

    fn drift(&mut self, t: f64, y: &[T], out: &mut [T]) {
        let mut o = vec![T::ZERO; out.len()];
        self.drift.eval(t, &y.to_vec(), &mut o);
        out.copy_from_slice(&o);
    }

    fn diffusion_times(&mut self, t: f64, y: &[T], dw: &[T], out: &mut [T]) {
        let mut g = vec![T::ZERO; out.len()];
        self.diffusion.eval(t, &y.to_vec(), &mut g);
        for i in 0..out.len() {
            out[i] = g[i] * dw[i];
        }
    }

    fn drift_vjp(&mut self, t: f64, y: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        let mut ay = vec![T::ZERO; adj_y.len()];
        let mut ap = adj_p[..self.drift_params].to_vec();
        self.drift.vjp(t, &y.to_vec(), &a.to_vec(), &mut ay, &mut ap);
        adj_y.copy_from_slice(&ay);
        adj_p[..self.drift_params].copy_from_slice(&ap);
    }

    fn diffusion_times_vjp(&mut self, t: f64, y: &[T], dw: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        let cot: Vec<T> = a.iter().zip(dw).map(|(x, w)| *x * *w).collect();
        let mut ay = vec![T::ZERO; adj_y.len()];
        let mut ap = adj_p[self.drift_params..].to_vec();
        self.diffusion.vjp(t, &y.to_vec(), &cot, &mut ay, &mut ap);
        adj_y.copy_from_slice(&ay);
        adj_p[self.drift_params..].copy_from_slice(&ap);
    }

    fn milstein(&mut self, form: MilsteinForm, t: f64, y: &[T], dw: &[T], ito_dt: T, out: &mut [T]) -> Result<(), SdeError> {
        if form != MilsteinForm::Transposed {
            return Err(SdeError::Unsupported(format!(
                "{form:?} Milstein needs Jacobian-vector products or the Jacobian's diagonal of the diffusion module; burn modules give the transposed form (milstein_ito, milstein_strat)"
            )));
        }
        // 1/2 (g * q)^T dg/dy, q = dW^2 - ito_dt: one VJP of g.
        let yv = y.to_vec();
        let mut g = vec![T::ZERO; y.len()];
        self.diffusion.eval(t, &yv, &mut g);
        let half = T::from_f64(0.5);
        let cot: Vec<T> = g.iter().zip(dw).map(|(gi, w)| half * *gi * (*w * *w - ito_dt)).collect();
        let mut ay = vec![T::ZERO; y.len()];
        let mut scratch = vec![T::ZERO; self.diffusion_params];
        self.diffusion.vjp(t, &yv, &cot, &mut ay, &mut scratch);
        out.copy_from_slice(&ay);
        Ok(())
    }
}
