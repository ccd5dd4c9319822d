//! Latent ODEs for irregularly sampled time series (Rubanova, Chen & Duvenaud 2019), with the
//! ODE-RNN and a GRU fed the time gaps as baselines, on the data sets of [`data`].
//!
//! **Series with their own times.** All series live on one grid of 100 times with a mask of the
//! observed points, and the models step through the grid (the union of every series' times),
//! updating a series' state only where it has an observation. On this grid a union step costs
//! the same as any series' own step, and every series of a batch takes it together, so one
//! batched RK4 step per interval serves them all (see `docs/continuous_time.md` for the
//! measured alternative, a per-series solve on each series' own times).
//!
//! **One model for both tasks.** Each training batch conditions on the whole observed series
//! or, with probability one half, on its observations before `t = 2.5` only; the loss is on
//! every observed point of `[0, 5]`. Evaluation then asks the same model for interpolation
//! (condition on all observed points, predict all 100 grid values) and extrapolation
//! (condition on `t < 2.5`, predict the grid values with `t >= 2.5`), both scored by the mean
//! squared error against the noise-free series of held-out data.
//!
//! Training is Adam (learning rate `lr`, decaying by `lr_decay` per epoch) on the negative ELBO
//! (latent ODE; `kl_warmup_epochs` can ramp the KL term's weight from 0 to 1, off by default:
//! a 10-epoch ramp changed held-out MSE by less than the spread over seeds here) or the Gaussian negative log-likelihood of the one-step-ahead predictions
//! (baselines), observation standard deviation 0.1; gradients by burn's reverse mode through
//! the RK4 steps. Everything random (initialisation, batch order, conditioning, `ε`) comes
//! from the seed.

pub mod data;
pub mod model;

pub use data::{POINTS, SPLIT, SeriesKind, SeriesSet};
pub use model::{Batch, Forward, GruGaps, LatentOde, OdeRnnModel, Sizes};

use crate::seeded_init::SeededUniform;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use model::tensor2;
use nodal::solve::SolveError;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::time::Instant;

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// ODE-RNN encoder, latent ODE decoder, ELBO.
    LatentOde,
    /// The ODE-RNN alone, forecasting one step ahead.
    OdeRnn,
    /// A GRU with time-gap inputs.
    Gru,
}

impl ModelKind {
    /// From `latent-ode`, `ode-rnn` or `gru`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "latent-ode" => Some(Self::LatentOde),
            "ode-rnn" => Some(Self::OdeRnn),
            "gru" => Some(Self::Gru),
            _ => None,
        }
    }
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::LatentOde => "latent-ode",
            Self::OdeRnn => "ode-rnn",
            Self::Gru => "gru",
        }
    }
}

/// One run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct LatentOdeConfig {
    /// Data set.
    pub data: SeriesKind,
    /// Probability that a grid point is observed.
    pub keep: f64,
    /// Network.
    pub model: ModelKind,
    /// Series generated (the first 80% train, the rest test).
    pub series: usize,
    /// Passes over the training series.
    pub epochs: usize,
    /// Series per batch.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Learning-rate factor per epoch.
    pub lr_decay: f64,
    /// Observation standard deviation of the likelihood.
    pub obs_std: f64,
    /// Epochs over which the KL term's weight rises linearly from 0 to 1 (latent ODE; 0: none).
    pub kl_warmup_epochs: usize,
    /// Network sizes.
    pub sizes: Sizes,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for LatentOdeConfig {
    fn default() -> Self {
        Self {
            data: SeriesKind::Periodic,
            keep: 0.3,
            model: ModelKind::LatentOde,
            series: 1000,
            epochs: 40,
            batch: 50,
            lr: 1e-2,
            lr_decay: 0.97,
            obs_std: 0.1,
            kl_warmup_epochs: 0,
            sizes: Sizes::default(),
            seed: 0,
        }
    }
}

impl LatentOdeConfig {
    /// Reject settings that cannot run.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.keep > 0.0 && self.keep <= 1.0) {
            return Err(format!("keep must be in (0, 1], got {}", self.keep));
        }
        if self.series < 10 {
            return Err(format!("at least 10 series are needed (8 train, 2 test), got {}", self.series));
        }
        if self.batch == 0 || self.batch > self.series * 4 / 5 {
            return Err(format!("batch must be between 1 and the {} training series, got {}", self.series * 4 / 5, self.batch));
        }
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        for (name, v) in [("lr", self.lr), ("lr-decay", self.lr_decay), ("obs-std", self.obs_std)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be positive and finite, got {v}"));
            }
        }
        let s = self.sizes;
        if [s.latent, s.hidden, s.rec_field, s.dec_field].contains(&0) {
            return Err("network sizes must be at least 1".into());
        }
        Ok(())
    }
    fn train_count(&self) -> usize {
        self.series * 4 / 5
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum LatentOdeError {
    /// Settings refused.
    #[error("{0}")]
    Config(String),
    /// Simulating the data failed.
    #[error("simulating the data: {0}")]
    Data(#[from] SolveError),
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, batch {batch}: loss {loss}")]
    Diverged {
        /// Epoch (from 1).
        epoch: usize,
        /// Batch within the epoch (from 1).
        batch: usize,
        /// The loss.
        loss: f64,
    },
}

/// The networks of a run.
#[derive(Debug, Clone)]
pub enum Net {
    /// Latent ODE.
    LatentOde(LatentOde),
    /// ODE-RNN.
    OdeRnn(OdeRnnModel),
    /// GRU with gaps.
    Gru(GruGaps),
}

impl Net {
    fn new(kind: ModelKind, sizes: Sizes, seed: u64, device: &Device) -> Self {
        let mut init = SeededUniform::new(seed);
        match kind {
            ModelKind::LatentOde => Self::LatentOde(init.apply(LatentOde::new(sizes, device))),
            ModelKind::OdeRnn => Self::OdeRnn(init.apply(OdeRnnModel::new(sizes, device))),
            ModelKind::Gru => Self::Gru(init.apply(GruGaps::new(sizes, device))),
        }
    }
    /// Trainable scalars.
    pub fn num_params(&self) -> usize {
        match self {
            Self::LatentOde(m) => m.num_params(),
            Self::OdeRnn(m) => m.num_params(),
            Self::Gru(m) => m.num_params(),
        }
    }
    /// Predictions (and KL) on a batch; `eps` draws `z_0` (latent ODE only).
    pub fn forward(&self, b: &Batch, eps: Option<Tensor<2>>, sizes: Sizes, device: &Device) -> Forward {
        match self {
            Self::LatentOde(m) => m.forward(b, eps, sizes, device),
            Self::OdeRnn(m) => m.forward(b, sizes, device),
            Self::Gru(m) => m.forward(b, sizes, device),
        }
    }
    /// The same networks without autodiff.
    pub fn valid(&self) -> Self {
        match self {
            Self::LatentOde(m) => Self::LatentOde(m.clone().valid()),
            Self::OdeRnn(m) => Self::OdeRnn(m.clone().valid()),
            Self::Gru(m) => Self::Gru(m.clone().valid()),
        }
    }
    /// Save the weights (`nodal::module_weights` format).
    pub fn save(&self, path: &std::path::Path, meta: &[(&str, String)]) -> Result<(), nodal::io::FileError> {
        match self {
            Self::LatentOde(m) => nodal::module_weights::save_module(m, "latent-ode", path, meta, false),
            Self::OdeRnn(m) => nodal::module_weights::save_module(m, "ode-rnn", path, meta, false),
            Self::Gru(m) => nodal::module_weights::save_module(m, "gru", path, meta, false),
        }
    }
}

/// Host data of a batch: conditioning on all observed points or on `t < SPLIT` only.
pub fn make_batch(set: &SeriesSet, idx: &[usize], first_half: bool, device: &Device) -> Batch {
    let rows = idx.len();
    let ts = set.ts.clone();
    let (mut xs, mut ms, mut gaps) = (Vec::with_capacity(POINTS), Vec::with_capacity(POINTS), Vec::with_capacity(POINTS));
    let mut last = vec![ts[0]; rows];
    for (i, &t) in ts.iter().enumerate() {
        let mut x = vec![0.0f32; rows];
        let mut m = vec![0.0f32; rows];
        let mut g = vec![0.0f32; rows];
        for (j, &r) in idx.iter().enumerate() {
            let k = r * POINTS + i;
            let seen = set.mask[k] > 0.0 && (!first_half || t < SPLIT);
            g[j] = (t - last[j]) as f32;
            if seen {
                x[j] = set.values[k];
                m[j] = 1.0;
                last[j] = t;
            }
        }
        xs.push(tensor2(x, rows, 1, device));
        ms.push(tensor2(m, rows, 1, device));
        gaps.push(tensor2(g, rows, 1, device));
    }
    Batch { rows, ts, xs, ms, gaps }
}

/// Time-major `[T rows, 1]` targets and weights: `values` where observed (training).
fn targets(set: &SeriesSet, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>, f64) {
    let rows = idx.len();
    let mut y = vec![0.0f32; POINTS * rows];
    let mut w = vec![0.0f32; POINTS * rows];
    for i in 0..POINTS {
        for (j, &r) in idx.iter().enumerate() {
            y[i * rows + j] = set.values[r * POINTS + i];
            w[i * rows + j] = set.mask[r * POINTS + i];
        }
    }
    let n_obs = w.iter().map(|&v| v as f64).sum();
    (tensor2(y, POINTS * rows, 1, device), tensor2(w, POINTS * rows, 1, device), n_obs)
}

fn normals(rows: usize, cols: usize, rng: &mut StdRng, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..rows * cols).map(|_| StandardNormal.sample(rng)).collect();
    tensor2(v, rows, cols, device)
}

/// One epoch's record.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// Epoch (from 1).
    pub epoch: usize,
    /// Mean training loss per series over the epoch's batches (with the KL weight in use).
    pub loss: f64,
    /// Wall time of the epoch's training (batching, forward, backward, update).
    pub seconds: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Held-out errors.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    /// Interpolation MSE: conditioned on every observed point, all grid values.
    pub interp_mse: f64,
    /// Extrapolation MSE: conditioned on `t < 2.5`, the grid values with `t >= 2.5`.
    pub extrap_mse: f64,
}

/// Data, networks, optimiser.
pub struct LatentOdeTrainer {
    /// Settings.
    pub cfg: LatentOdeConfig,
    /// Training series.
    pub train: SeriesSet,
    /// Held-out series.
    pub test: SeriesSet,
    /// The networks (autodiff device).
    pub net: Net,
    opt: ModuleOptimizer,
    device: Device,
    rng: StdRng,
    epoch: usize,
}

fn adam_step<M: Module + Clone>(opt: &mut ModuleOptimizer, lr: f64, m: &M, loss: Tensor<1>) -> M {
    let grads = loss.backward();
    let gp = GradientsParams::from_grads(grads, m);
    opt.step(lr, m.clone(), gp)
}

impl LatentOdeTrainer {
    /// Generate the data and initialise the networks.
    pub fn new(cfg: LatentOdeConfig) -> Result<Self, LatentOdeError> {
        cfg.validate().map_err(LatentOdeError::Config)?;
        let all = data::generate(cfg.data, cfg.series, cfg.keep, cfg.seed)?;
        let n_train = cfg.train_count();
        let (train, test) = (all.slice(0..n_train), all.slice(n_train..cfg.series));
        let device = Device::flex().autodiff();
        let net = Net::new(cfg.model, cfg.sizes, cfg.seed ^ 0x5EED, &device);
        let opt = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).init();
        let rng = StdRng::seed_from_u64(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA11);
        Ok(Self { cfg, train, test, net, opt, device, rng, epoch: 0 })
    }

    /// One pass over the training series.
    pub fn epoch(&mut self) -> Result<EpochRecord, LatentOdeError> {
        let start = Instant::now();
        let cfg = self.cfg.clone();
        let lr = cfg.lr * cfg.lr_decay.powi(self.epoch as i32);
        let mut order: Vec<usize> = (0..self.train.n).collect();
        order.shuffle(&mut self.rng);
        let (mut total, mut batches) = (0.0, 0usize);
        let var2 = 2.0 * cfg.obs_std * cfg.obs_std;
        let log_norm = cfg.obs_std.ln() + 0.5 * (std::f64::consts::TAU).ln();
        let per_epoch = order.len().div_ceil(cfg.batch);
        for (k, idx) in order.chunks(cfg.batch).enumerate() {
            let it = self.epoch * per_epoch + k;
            let kl_weight = if cfg.kl_warmup_epochs == 0 { 1.0 } else { (it as f64 / (cfg.kl_warmup_epochs * per_epoch) as f64).min(1.0) };
            let first_half = self.rng.gen_bool(0.5);
            let b = make_batch(&self.train, idx, first_half, &self.device);
            let (y, w, n_obs) = targets(&self.train, idx, &self.device);
            let eps = (cfg.model == ModelKind::LatentOde).then(|| normals(idx.len(), cfg.sizes.latent, &mut self.rng, &self.device));
            let out = self.net.forward(&b, eps, cfg.sizes, &self.device);
            let rows = idx.len() as f64;
            let nll = ((out.pred - y).powi_scalar(2) * w).sum().div_scalar(var2).add_scalar(n_obs * log_norm);
            let loss = match out.kl {
                Some(kl) => (nll + kl.mul_scalar(kl_weight)).div_scalar(rows),
                None => nll.div_scalar(rows),
            };
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                return Err(LatentOdeError::Diverged { epoch: self.epoch + 1, batch: k + 1, loss: value });
            }
            self.net = match &self.net {
                Net::LatentOde(m) => Net::LatentOde(adam_step(&mut self.opt, lr, m, loss)),
                Net::OdeRnn(m) => Net::OdeRnn(adam_step(&mut self.opt, lr, m, loss)),
                Net::Gru(m) => Net::Gru(adam_step(&mut self.opt, lr, m, loss)),
            };
            total += value;
            batches += 1;
        }
        self.epoch += 1;
        Ok(EpochRecord { epoch: self.epoch, loss: total / batches.max(1) as f64, seconds: start.elapsed().as_secs_f64(), lr })
    }

    /// Held-out interpolation and extrapolation MSE against the noise-free series.
    pub fn scores(&self) -> Scores {
        scores(&self.net.valid(), &self.test, self.cfg.sizes)
    }

    /// Posterior predictions of test series `idx` for the figures: the mean and `samples`
    /// draws of `z_0` (the baselines give their one prediction), `[series][grid]` each,
    /// conditioned on everything (`first_half = false`) or on `t < 2.5`.
    pub fn predictions(&self, idx: &[usize], first_half: bool, samples: usize) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
        let dev = Device::flex();
        let net = self.net.valid();
        let b = make_batch(&self.test, idx, first_half, &dev);
        let host = |t: Tensor<2>| per_series(t, idx.len());
        let mean = host(net.forward(&b, None, self.cfg.sizes, &dev).pred);
        let mut draws = Vec::new();
        if let Net::LatentOde(_) = net {
            let mut rng = StdRng::seed_from_u64(self.cfg.seed ^ 0xF16);
            for _ in 0..samples {
                let eps = normals(idx.len(), self.cfg.sizes.latent, &mut rng, &dev);
                draws.push(host(net.forward(&b, Some(eps), self.cfg.sizes, &dev).pred));
            }
        }
        (mean, draws)
    }

    /// A fresh random draw (for callers that need one tied to this run).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// Time-major predictions to `[series][grid]`.
fn per_series(t: Tensor<2>, rows: usize) -> Vec<Vec<f32>> {
    let v = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    (0..rows).map(|j| (0..POINTS).map(|i| v.get(i * rows + j).copied().unwrap_or(f32::NAN)).collect()).collect()
}

/// Interpolation and extrapolation MSE of `net` (without autodiff) on `set`.
pub fn scores(net: &Net, set: &SeriesSet, sizes: Sizes) -> Scores {
    let dev = Device::flex();
    let (mut se_i, mut n_i, mut se_e, mut n_e) = (0.0, 0usize, 0.0, 0usize);
    let idx: Vec<usize> = (0..set.n).collect();
    for chunk in idx.chunks(100) {
        for first_half in [false, true] {
            let b = make_batch(set, chunk, first_half, &dev);
            let pred = per_series(net.forward(&b, None, sizes, &dev).pred, chunk.len());
            for (j, &r) in chunk.iter().enumerate() {
                for i in 0..POINTS {
                    let d = (pred[j][i] - set.clean[r * POINTS + i]) as f64;
                    if !first_half {
                        se_i += d * d;
                        n_i += 1;
                    } else if set.ts[i] >= SPLIT {
                        se_e += d * d;
                        n_e += 1;
                    }
                }
            }
        }
    }
    Scores { interp_mse: se_i / n_i.max(1) as f64, extrap_mse: se_e / n_e.max(1) as f64 }
}

#[cfg(test)]
mod tests;
