//! The KL divergence between a posterior and a prior SDE, integrated as an extra state.
//!
//! A latent SDE (Li, Wong, Chen & Duvenaud 2020, "Scalable gradients for stochastic differential
//! equations", §5) has a prior `dz = h(t, z) dt + g(t, z) dW` and an approximate posterior
//! `dz = f(t, z) dt + g(t, z) dW` with the same diagonal diffusion. By Girsanov's theorem the KL
//! divergence between their path measures over `[t0, t1]` is
//!
//! ```text
//! KL(Q || P) = E_Q [ ∫ ½ |u(t, z)|² dt ],   g(t, z) u(t, z) = f(t, z) - h(t, z),
//! ```
//!
//! so one sample path of the posterior gives an unbiased estimate when the state is augmented
//! with `l`, `dl = ½ |u|² dt` (no noise). [`PathKl`] is that augmented SDE: state
//! `[z, l]` (`latent + 1` columns), drift `[f, ½ |(f - h) / g|²]`, diffusion `[g, 0]`. It needs
//! `g` bounded away from zero (a sigmoid or softplus output does it).
//!
//! Both calculi give the same `u`: the Ito and Stratonovich drifts of one process differ by
//! `½ g ∂g/∂z` (diagonal noise), the same for posterior and prior since they share `g`, so
//! `f - h` is unchanged. Any scheme of [`super::TENSOR_SCHEMES`] therefore estimates the same
//! divergence, each for the process it discretises.

use super::tensor_solve::TensorSdeTerms;
use burn::tensor::Tensor;

/// A posterior and a prior SDE with one shared diagonal diffusion, on `[rows, latent]` states.
pub trait PosteriorPrior {
    /// Latent width.
    fn latent(&self) -> usize;
    /// `(f, h, g)` at `(t, z)`: posterior drift, prior drift and diffusion, each of `z`'s shape.
    fn drifts_diffusion(&self, t: f64, z: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>);
}

/// The posterior SDE augmented with its KL integrand as a last column (see the module docs).
pub struct PathKl<'a, M: PosteriorPrior + ?Sized> {
    /// The model.
    pub model: &'a M,
}

impl<'a, M: PosteriorPrior + ?Sized> PathKl<'a, M> {
    /// The augmented terms of `model`.
    pub fn new(model: &'a M) -> Self {
        Self { model }
    }

    /// `[z0, 0]`: the augmented initial state (`z0` is `[rows, latent]`).
    pub fn initial(&self, z0: Tensor<2>) -> Tensor<2> {
        let [rows, _] = z0.dims();
        let zero = z0.zeros_like().slice([0..rows, 0..1]);
        Tensor::cat(vec![z0, zero], 1)
    }

    /// `(z, l)`: the latent state `[rows, latent]` and the KL accumulated so far `[rows, 1]`.
    pub fn split(&self, y: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let [rows, width] = y.dims();
        let latent = self.model.latent();
        debug_assert_eq!(width, latent + 1);
        (y.clone().slice([0..rows, 0..latent]), y.slice([0..rows, latent..latent + 1]))
    }
}

impl<M: PosteriorPrior + ?Sized> TensorSdeTerms for PathKl<'_, M> {
    fn drift_diffusion(&self, t: f64, y: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (z, _) = self.split(y);
        let (f, h, g) = self.model.drifts_diffusion(t, z);
        let u = (f.clone() - h) / g.clone();
        let kl_rate = u.powi_scalar(2).sum_dim(1).mul_scalar(0.5);
        let zero = kl_rate.zeros_like();
        (Tensor::cat(vec![f, kl_rate], 1), Tensor::cat(vec![g, zero], 1))
    }
}
