//! SDE terms from the solver core's dynamics traits: a drift and a diffusion, each any
//! [`VjpDynamics`] on row-major `Vec<T>` states with flat parameter vectors (the fused MLP,
//! burn modules through `nodal::neural_ode::module_dynamics::ModuleDynamics`, a hand-written
//! field), make `dy = f(t, y) dt + g(t, y) o dW` with diagonal noise: `g`'s output is the
//! per-component noise scale and `g dW` is elementwise.
//!
//! The VJP of `g dW` is `g`'s VJP with cotangent `a * dW`. The transposed-form Milstein
//! correction `1/2 sum_j (dg_j/dy_i) g_j q_j` is one more VJP of `g`; its derivative would need
//! second derivatives of `g`, which the traits do not give, so gradients through Milstein steps
//! are [`SdeError::Unsupported`] (the other Milstein forms need Jacobian-vector products or the
//! Jacobian's diagonal: also unsupported).

use super::error::SdeError;
use super::terms::{MilsteinForm, Noise, SdeTerms};
use crate::dynamics::VjpDynamics;
use crate::scalar::Scalar;

/// A drift and a diffusion [`VjpDynamics`] as [`SdeTerms`] with diagonal noise. Parameters: the
/// drift's, then the diffusion's.
pub struct DynamicsSde<T, F, G> {
    /// The drift `f`.
    pub drift: F,
    /// The diffusion `g` (per-component scale).
    pub diffusion: G,
    dim: usize,
    drift_params: usize,
    diffusion_params: usize,
    /// Scratch in the traits' `Vec` shapes.
    y: Vec<T>,
    a: Vec<T>,
    out: Vec<T>,
    adj: Vec<T>,
    params: Vec<T>,
}

impl<T: Scalar, F: VjpDynamics<Vec<T>, Params = Vec<T>>, G: VjpDynamics<Vec<T>, Params = Vec<T>>> DynamicsSde<T, F, G> {
    /// Terms for states with rows of width `dim`.
    pub fn new(drift: F, diffusion: G, dim: usize) -> Self {
        let (drift_params, diffusion_params) = (drift.param_zeros().len(), diffusion.param_zeros().len());
        Self { drift, diffusion, dim, drift_params, diffusion_params, y: vec![], a: vec![], out: vec![], adj: vec![], params: vec![] }
    }

    /// Number of drift parameters (the first block of the flat gradient).
    pub fn drift_params(&self) -> usize {
        self.drift_params
    }

    fn load(&mut self, y: &[T], n: usize) {
        self.y.clear();
        self.y.extend_from_slice(y);
        self.out.resize(n, T::ZERO);
        self.adj.resize(n, T::ZERO);
    }
}

impl<T: Scalar, F: VjpDynamics<Vec<T>, Params = Vec<T>>, G: VjpDynamics<Vec<T>, Params = Vec<T>>> SdeTerms<T> for DynamicsSde<T, F, G> {
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
        self.load(y, out.len());
        self.drift.eval(t, &self.y, &mut self.out);
        out.copy_from_slice(&self.out);
    }

    fn diffusion_times(&mut self, t: f64, y: &[T], dw: &[T], out: &mut [T]) {
        self.load(y, out.len());
        self.diffusion.eval(t, &self.y, &mut self.out);
        for i in 0..out.len() {
            out[i] = self.out[i] * dw[i];
        }
    }

    fn drift_vjp(&mut self, t: f64, y: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        self.load(y, adj_y.len());
        self.a.clear();
        self.a.extend_from_slice(a);
        self.params.clear();
        self.params.extend_from_slice(&adj_p[..self.drift_params]);
        self.drift.vjp(t, &self.y, &self.a, &mut self.adj, &mut self.params);
        adj_y.copy_from_slice(&self.adj);
        adj_p[..self.drift_params].copy_from_slice(&self.params);
    }

    fn diffusion_times_vjp(&mut self, t: f64, y: &[T], dw: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        self.load(y, adj_y.len());
        self.a.clear();
        self.a.extend(a.iter().zip(dw).map(|(x, w)| *x * *w));
        self.params.clear();
        self.params.extend_from_slice(&adj_p[self.drift_params..]);
        self.diffusion.vjp(t, &self.y, &self.a, &mut self.adj, &mut self.params);
        adj_y.copy_from_slice(&self.adj);
        adj_p[self.drift_params..].copy_from_slice(&self.params);
    }

    fn milstein(&mut self, form: MilsteinForm, t: f64, y: &[T], dw: &[T], ito_dt: T, out: &mut [T]) -> Result<(), SdeError> {
        if form != MilsteinForm::Transposed {
            return Err(SdeError::Unsupported(format!(
                "{form:?} Milstein needs Jacobian-vector products or the Jacobian's diagonal of the diffusion; dynamics with VJPs give the transposed form (milstein_ito, milstein_strat)"
            )));
        }
        // 1/2 (g * q)^T dg/dy with q = dW^2 - ito_dt: one VJP of g.
        self.load(y, out.len());
        self.diffusion.eval(t, &self.y, &mut self.out);
        let half = T::from_f64(0.5);
        self.a.clear();
        self.a.extend(self.out.iter().zip(dw).map(|(g, w)| half * *g * (*w * *w - ito_dt)));
        let mut scratch = self.diffusion.param_zeros();
        self.diffusion.vjp(t, &self.y, &self.a, &mut self.adj, &mut scratch);
        out.copy_from_slice(&self.adj);
        Ok(())
    }
}
