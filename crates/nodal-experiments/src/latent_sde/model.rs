//! The latent SDE's networks and its evidence lower bound (Li et al. 2020, §5 and §7.3).
//!
//! - Encoder: a GRU run backwards in time over the observations, then a linear map to a
//!   context `c_i` per observation time, so `c_i` summarises the observations from `t_i` on.
//! - Approximate posterior over `z(t_0)`: `N(μ, diag σ²)` from a linear map of `c_0`.
//! - Posterior drift `f(z, c_i)` on `[t_i, t_{i+1})`, prior drift `h(z)`: MLPs with tanh (or
//!   softplus) hidden layers.
//! - Diffusion `g(z)`: diagonal, component `i` a small network of `z_i` alone ending in a
//!   sigmoid, shared by posterior and prior (the path KL is finite only then).
//! - Decoder: a linear map from `z` to the observed coordinates, Laplace likelihood of a fixed
//!   scale.
//!
//! ```text
//! ELBO = E_q [ Σ_i log p(x_i | z(t_i)) ] - KL(q(z_0) || p(z_0)) - KL(posterior SDE || prior SDE)
//! ```
//!
//! with one posterior sample per series, the path KL as the extra state of
//! [`nodal::sde::PathKl`], and burn's autodiff through the unrolled solve for every gradient.

use super::data::OBS_DIM;
use super::encoder::Encoder;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, softplus};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::sde::{PathKl, PosteriorPrior, TensorSdeTerms, sde_solve_tensor};
use nodal::solve::sde::{BrownianPath, Scheme, SdeError, StepTimes};
use rand::Rng;

/// Widths of the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widths {
    /// Latent state.
    pub latent: usize,
    /// Encoder context per time.
    pub context: usize,
    /// Hidden layers of the drifts (and the GRU's state).
    pub hidden: usize,
    /// Hidden layer of each diffusion component's network.
    pub diffusion_hidden: usize,
    /// Hidden activation of the drifts and the diffusion.
    pub activation: Activation,
}

impl Default for Widths {
    fn default() -> Self {
        Self { latent: 4, context: 32, hidden: 64, diffusion_hidden: 16, activation: Activation::Tanh }
    }
}

/// The hidden-layer nonlinearity of the drifts and of the diffusion's small networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `tanh`: one tensor operation forwards and one backwards.
    Tanh,
    /// `softplus(x) = log(1 + e^x)` (the choice of Li et al.'s released example): burn
    /// composes it from seven operations (a threshold guards `exp`), about 4x the cost of
    /// `tanh` per layer on the CPU backend.
    Softplus,
}

impl Activation {
    /// Parse `tanh` or `softplus`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tanh" => Some(Self::Tanh),
            "softplus" => Some(Self::Softplus),
            _ => None,
        }
    }
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tanh => "tanh",
            Self::Softplus => "softplus",
        }
    }
    /// Applied elementwise.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Tanh => nodal::activation::tanh(x),
            Self::Softplus => softplus(x, 1.0),
        }
    }
}

/// A multilayer perceptron with an activation between layers.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers.
    pub layers: Vec<Linear>,
    /// Between layers.
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    fn new(widths: &[usize], activation: Activation, device: &Device) -> Self {
        Self { layers: widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect(), activation }
    }
    /// `x` through every layer (the activation between them, none after the last).
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i + 1 < n {
                x = self.activation.apply(x);
            }
        }
        x
    }
}

/// Diagonal diffusion: `g_i(z) = sigmoid(Σ_k w2[i,k] a(w1[i,k] z_i + b1[i,k]) + b2[i])` with the
/// activation `a`,
/// one small network per latent component (so `∂g_i/∂z_j = 0` for `j ≠ i`: diagonal, hence
/// commutative, noise).
#[derive(Module, Debug)]
pub struct DiagonalDiffusion {
    /// First-layer weights `[latent, hidden]`.
    pub w1: Param<Tensor<2>>,
    /// First-layer biases `[latent, hidden]`.
    pub b1: Param<Tensor<2>>,
    /// Second-layer weights `[latent, hidden]`.
    pub w2: Param<Tensor<2>>,
    /// Second-layer biases `[latent]`.
    pub b2: Param<Tensor<1>>,
    /// Hidden activation.
    #[module(skip)]
    pub activation: Activation,
}

impl DiagonalDiffusion {
    fn new(latent: usize, hidden: usize, activation: Activation, rng: &mut impl Rng, device: &Device) -> Self {
        // PyTorch's default bounds ±1/sqrt(fan_in): fan-in 1 for the first layer, hidden for
        // the second.
        let mut draw = |n: usize, bound: f64| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect() };
        let h = 1.0 / (hidden as f64).sqrt();
        let t2 = |v: Vec<f32>| Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, [latent, hidden]), (device, DType::F32)));
        let (w1, b1, w2) = (draw(latent * hidden, 1.0), draw(latent * hidden, 1.0), draw(latent * hidden, h));
        let b2 = draw(latent, h);
        Self {
            w1: t2(w1),
            b1: t2(b1),
            w2: t2(w2),
            b2: Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b2, [latent]), (device, DType::F32))),
            activation,
        }
    }
    /// `g(z)` for `z` of shape `[rows, latent]`.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let z3: Tensor<3> = z.unsqueeze_dim(2);
        let h = self.activation.apply(z3 * self.w1.val().unsqueeze() + self.b1.val().unsqueeze());
        let o: Tensor<2> = (h * self.w2.val().unsqueeze()).sum_dim(2).squeeze_dim(2);
        sigmoid(o + self.b2.val().unsqueeze())
    }
}

/// Every network of the latent SDE.
#[derive(Module, Debug)]
pub struct LatentSdeNet {
    /// GRU over the reversed observations, and its map to contexts.
    pub encoder: Encoder,
    /// Context at `t_0` to the mean and log standard deviation of `q(z_0)`.
    pub qz0: Linear,
    /// Posterior drift `f([z, c])`.
    pub posterior_drift: Mlp,
    /// Prior drift `h(z)`.
    pub prior_drift: Mlp,
    /// Shared diagonal diffusion `g(z)`.
    pub diffusion: DiagonalDiffusion,
    /// Latent state to observed coordinates.
    pub decoder: Linear,
    /// Mean of the prior `p(z_0)`, `[1, latent]`.
    pub pz0_mean: Param<Tensor<2>>,
    /// Log standard deviation of `p(z_0)`, `[1, latent]`.
    pub pz0_logstd: Param<Tensor<2>>,
}

/// The ELBO's terms for one batch (means over its series).
pub struct Elbo {
    /// Objective to minimise: `-(log-likelihood - kl_weight (KL_z0 + KL_path))`.
    pub loss: Tensor<1>,
    /// Mean log-likelihood of a series.
    pub log_lik: f64,
    /// Mean `KL(q(z_0) || p(z_0))`.
    pub kl_z0: f64,
    /// Mean path KL (the extra state at the last time).
    pub kl_path: f64,
    /// Reconstructions: decoded posterior samples `[rows, T, OBS_DIM]`.
    pub recon: Tensor<3>,
}

impl Elbo {
    /// The unweighted negative ELBO per series.
    pub fn neg_elbo(&self) -> f64 {
        -(self.log_lik - self.kl_z0 - self.kl_path)
    }
}

/// How solves are run inside the ELBO and the samplers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveSetup {
    /// Step formula (one of [`nodal::sde::TENSOR_SCHEMES`]).
    pub scheme: Scheme,
    /// Steps per observation interval.
    pub substeps: usize,
}

/// Step boundaries: every observation interval cut into `substeps` equal steps.
pub fn step_times(ts: &[f64], substeps: usize) -> StepTimes {
    let mut v = vec![ts[0]];
    for w in ts.windows(2) {
        for k in 1..=substeps {
            v.push(w[0] + (w[1] - w[0]) * k as f64 / substeps as f64);
        }
    }
    StepTimes(v)
}

fn scalar(t: Tensor<1>) -> f64 {
    t.detach().into_scalar::<f64>()
}

impl LatentSdeNet {
    /// Freshly initialised networks: PyTorch's default bounds from a seeded generator.
    pub fn new(w: Widths, seed: u64, device: &Device) -> Self {
        let (l, c, h) = (w.latent, w.context, w.hidden);
        let mut init = crate::seeded_init::SeededUniform::new(seed);
        let encoder = init.apply(Encoder::new(OBS_DIM, h, c, device));
        let qz0 = init.apply(LinearConfig::new(c, 2 * l).init(device));
        let posterior_drift = init.apply(Mlp::new(&[l + c, h, h, l], w.activation, device));
        let prior_drift = init.apply(Mlp::new(&[l, h, h, l], w.activation, device));
        let decoder = init.apply(LinearConfig::new(l, OBS_DIM).init(device));
        let diffusion = DiagonalDiffusion::new(l, w.diffusion_hidden, w.activation, init.rng(), device);
        Self {
            encoder,
            qz0,
            posterior_drift,
            prior_drift,
            diffusion,
            decoder,
            pz0_mean: Param::from_tensor(Tensor::<2>::zeros([1, l], (device, DType::F32))),
            pz0_logstd: Param::from_tensor(Tensor::<2>::zeros([1, l], (device, DType::F32))),
        }
    }

    /// Latent width.
    pub fn latent(&self) -> usize {
        self.pz0_mean.val().dims()[1]
    }

    /// Contexts `c_0, ..., c_{T-1}` (`[rows, context]` each) of observations
    /// `[rows, T, OBS_DIM]`: the GRU reads them from the last time to the first, so `c_i`
    /// depends on `x_i, ..., x_{T-1}`.
    pub fn encode(&self, xs: &Tensor<3>) -> Vec<Tensor<2>> {
        let [rows, steps, d] = xs.dims();
        let per_time: Vec<Tensor<2>> = (0..steps).map(|t| xs.clone().slice([0..rows, t..t + 1, 0..d]).squeeze_dim(1)).collect();
        self.encoder.forward(&per_time)
    }

    /// Mean and log standard deviation of `q(z_0)` from the context at `t_0`.
    fn qz0_params(&self, c0: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let rows = c0.dims()[0];
        let p = self.qz0.forward(c0);
        let l = self.latent();
        (p.clone().slice([0..rows, 0..l]), p.slice([0..rows, l..2 * l]))
    }

    /// The ELBO of a batch `xs` (`[rows, T, OBS_DIM]` at times `ts`), with `eps` (`[rows,
    /// latent]`, standard normal) for the sample of `z_0` and `path` (`rows x (latent + 1)`
    /// channels on `ts`'s span) for the posterior SDE. `obs_scale` is the Laplace scale.
    #[allow(clippy::too_many_arguments)]
    pub fn elbo(
        &self,
        xs: Tensor<3>,
        ts: &[f64],
        eps: Tensor<2>,
        path: &mut dyn BrownianPath<f64>,
        setup: SolveSetup,
        obs_scale: f64,
        kl_weight: f64,
    ) -> Result<Elbo, SdeError> {
        let [rows, steps, _] = xs.dims();
        if steps < 2 || ts.len() != steps {
            return Err(SdeError::InvalidArgument(format!(
                "a latent-SDE batch needs at least two observation times, one per entry of ts (got {steps} times and {} entries)",
                ts.len()
            )));
        }
        let ctx = self.encode(&xs);
        let (mu, logstd) = self.qz0_params(ctx[0].clone());
        let z0 = mu.clone() + logstd.clone().exp() * eps;
        let posterior = Posterior { net: self, ctx, ts };
        let kl_terms = PathKl::new(&posterior);
        let out: Vec<usize> = (1..steps).map(|i| i * setup.substeps).collect();
        let ys = sde_solve_tensor(&kl_terms, path, setup.scheme, &step_times(ts, setup.substeps), kl_terms.initial(z0.clone()), &out)?;
        let mut kl_path = z0.zeros_like().slice([0..rows, 0..1]);
        let mut zs = vec![z0];
        for y in ys {
            let (z, l) = kl_terms.split(y);
            zs.push(z);
            kl_path = l;
        }
        let z: Tensor<3> = Tensor::stack(zs, 1);
        let recon = self.decoder.forward(z);
        let log_lik = ((recon.clone() - xs).abs().div_scalar(-obs_scale).sub_scalar((2.0 * obs_scale).ln())).sum().div_scalar(rows as f64);
        // KL between diagonal Gaussians, summed over components.
        let (pm, pls) = (self.pz0_mean.val(), self.pz0_logstd.val());
        let var_ratio = (logstd.clone() - pls.clone()).mul_scalar(2.0).exp();
        let mean_term = (mu - pm).powi_scalar(2) / pls.clone().mul_scalar(2.0).exp();
        let kl_z0 = ((var_ratio + mean_term).sub_scalar(1.0).mul_scalar(0.5) + pls - logstd).sum().div_scalar(rows as f64);
        let kl_path = kl_path.sum().div_scalar(rows as f64);
        let loss = (kl_z0.clone() + kl_path.clone()).mul_scalar(kl_weight) - log_lik.clone();
        Ok(Elbo { log_lik: scalar(log_lik), kl_z0: scalar(kl_z0), kl_path: scalar(kl_path), loss, recon })
    }

    /// Decoded sample paths of the prior SDE: `z_0 = μ_p + σ_p eps` (`eps` `[rows, latent]`),
    /// solved over `ts` on `path` (`rows x latent` channels). Returns `[rows, T, OBS_DIM]`.
    pub fn sample_prior(
        &self,
        ts: &[f64],
        eps: Tensor<2>,
        path: &mut dyn BrownianPath<f64>,
        setup: SolveSetup,
    ) -> Result<Tensor<3>, SdeError> {
        let z0 = self.pz0_mean.val() + self.pz0_logstd.val().exp() * eps;
        let out: Vec<usize> = (1..ts.len()).map(|i| i * setup.substeps).collect();
        let prior = Prior(self);
        let ys = sde_solve_tensor(&prior, path, setup.scheme, &step_times(ts, setup.substeps), z0.clone(), &out)?;
        let mut zs = vec![z0];
        zs.extend(ys);
        Ok(self.decoder.forward(Tensor::stack(zs, 1)))
    }
}

/// The posterior and prior SDEs of one batch: the drifts read the context of the observation
/// interval that holds `t` (`c_i` on `[t_i, t_{i+1})`).
struct Posterior<'a> {
    net: &'a LatentSdeNet,
    ctx: Vec<Tensor<2>>,
    ts: &'a [f64],
}

/// Index of the observation interval of `ts` that holds `t` (`i` for `t_i <= t < t_{i+1}`; times
/// within a rounding error of `t_{i+1}` belong to the next interval; clamped to the last time).
pub(crate) fn interval(ts: &[f64], t: f64) -> usize {
    let span = ts[ts.len() - 1] - ts[0];
    let tol = 1e-9 * span.abs().max(1.0);
    ts.partition_point(|&s| s <= t + tol).saturating_sub(1).min(ts.len() - 1)
}

impl PosteriorPrior for Posterior<'_> {
    fn latent(&self) -> usize {
        self.net.latent()
    }
    fn drifts_diffusion(&self, t: f64, z: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let c = self.ctx[interval(self.ts, t)].clone();
        let f = self.net.posterior_drift.forward(Tensor::cat(vec![z.clone(), c], 1));
        let h = self.net.prior_drift.forward(z.clone());
        (f, h, self.net.diffusion.forward(z))
    }
}

/// The prior SDE alone.
struct Prior<'a>(&'a LatentSdeNet);

impl TensorSdeTerms for Prior<'_> {
    fn drift_diffusion(&self, _t: f64, z: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        (self.0.prior_drift.forward(z.clone()), self.0.diffusion.forward(z))
    }
}
