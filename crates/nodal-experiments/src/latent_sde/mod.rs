//! A latent SDE (Li, Wong, Chen & Duvenaud 2020) trained on noisy paths of a stochastic Lorenz
//! system: the model of [`model`], the data of [`data`], and the training loop.
//!
//! Each iteration draws a batch of training series, one standard-normal `eps` for `z_0` and one
//! seeded Brownian path per series, all determined by `(seed, iteration)`, so a resumed run
//! repeats exactly what an uninterrupted one would have done. The objective is the negative
//! ELBO with the two KL terms weighted by `min(1, iteration / kl_anneal)` (KL annealing, as in
//! Li et al.'s experiments); Adam with an exponentially decaying learning rate updates every
//! network. Gradients are burn's reverse mode through the unrolled solve
//! (discretise-then-optimise: exact for the discretised model).
//!
//! Checkpoints (`checkpoint.json`, naming `ckpt-N.safetensors` and `ckpt-N.optim`) are written
//! by [`LatentSdeTrainer::save_checkpoint`]: weights and optimiser state first, the JSON that
//! names them last, each atomically, so an interruption at any moment leaves a consistent one.

pub mod data;
pub mod encoder;
pub mod model;
#[cfg(test)]
mod tests;

pub use data::{OBS_DIM, Observations, Standardise, StochasticLorenz};
pub use model::{Activation, Elbo, LatentSdeNet, SolveSetup, Widths};

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, DType, Device, Tensor, TensorData};
use nodal::io::{FileError, MAX_JSON_BYTES, MAX_WEIGHTS_BYTES, read_capped, read_text_capped, write_atomic};
use nodal::module_weights::{load_module, save_module};
use nodal::solve::sde::{Scheme, SdeError, SeededBrownian};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

/// The model name in weights files.
pub const MODEL_NAME: &str = "latent-sde";
/// Most iterations a run may ask for.
pub const MAX_ITERS: usize = 1_000_000;
/// The checkpoint file in the output folder.
pub const CHECKPOINT: &str = "checkpoint.json";

/// One run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentSdeConfig {
    /// Network widths.
    pub widths: Widths,
    /// The data-generating system.
    pub system: StochasticLorenz,
    /// Training series.
    pub n_train: usize,
    /// Held-out series (test ELBO, reconstruction and prior statistics).
    pub n_test: usize,
    /// Observation times per series (equally spaced on `[0, 1]`).
    pub points: usize,
    /// Observation noise (standard deviation, standardised units); also the Laplace scale of
    /// the likelihood.
    pub noise_std: f64,
    /// Series per iteration.
    pub batch: usize,
    /// Iterations.
    pub iters: usize,
    /// Initial Adam learning rate.
    pub lr: f64,
    /// Learning-rate factor per iteration.
    pub lr_decay: f64,
    /// Iterations over which the KL weight rises linearly from 0 to 1 (0: always 1).
    pub kl_anneal: usize,
    /// Step formula and steps per observation interval.
    pub setup: SolveSetup,
    /// Seed of the data, the weights, the batches, the `z_0` samples and the Brownian paths.
    pub seed: u64,
}

impl Default for LatentSdeConfig {
    fn default() -> Self {
        Self {
            widths: Widths::default(),
            system: StochasticLorenz::default(),
            n_train: 1024,
            n_test: 256,
            points: 100,
            noise_std: 0.01,
            batch: 256,
            iters: 1000,
            lr: 1e-2,
            lr_decay: 0.999,
            kl_anneal: 500,
            setup: SolveSetup { scheme: Scheme::EulerMaruyama, substeps: 1 },
            seed: 0,
        }
    }
}

impl LatentSdeConfig {
    /// A typed description of the first setting out of range.
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.widths;
        let checks: [(bool, String); 11] = [
            ((1..=MAX_ITERS).contains(&self.iters), format!("iterations must be in 1..={MAX_ITERS} (got {})", self.iters)),
            (self.n_train >= 1 && self.n_train <= 1 << 20, format!("training series must be in 1..=1048576 (got {})", self.n_train)),
            (self.n_test >= 1 && self.n_test <= 1 << 20, format!("test series must be in 1..=1048576 (got {})", self.n_test)),
            ((2..=10_000).contains(&self.points), format!("observation times must be in 2..=10000 (got {})", self.points)),
            (
                self.batch >= 1 && self.batch <= self.n_train,
                format!("the batch must hold 1 to {} series (the training set; got {})", self.n_train, self.batch),
            ),
            (
                self.noise_std.is_finite() && self.noise_std > 0.0,
                format!("the observation noise must be finite and positive (got {})", self.noise_std),
            ),
            (self.lr.is_finite() && self.lr > 0.0, format!("the learning rate must be finite and positive (got {})", self.lr)),
            (
                self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0,
                format!("the learning-rate decay must be in (0, 1] (got {})", self.lr_decay),
            ),
            (
                (1..=1000).contains(&self.setup.substeps),
                format!("steps per observation interval must be in 1..=1000 (got {})", self.setup.substeps),
            ),
            (
                nodal::sde::TENSOR_SCHEMES.contains(&self.setup.scheme),
                format!("scheme {} is not available for latent SDEs: use euler_maruyama, heun or midpoint", self.setup.scheme.name()),
            ),
            (
                [w.latent, w.context, w.hidden, w.diffusion_hidden].iter().all(|&v| (1..=4096).contains(&v)),
                format!("widths must be in 1..=4096 (got {w:?})"),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(why),
            None => Ok(()),
        }
    }

    /// The KL weight at iteration `it` (0-based).
    pub fn kl_weight(&self, it: usize) -> f64 {
        if self.kl_anneal == 0 { 1.0 } else { ((it + 1) as f64 / self.kl_anneal as f64).min(1.0) }
    }

    /// The learning rate at iteration `it`.
    pub fn lr_at(&self, it: usize) -> f64 {
        self.lr * self.lr_decay.powi(it.min(i32::MAX as usize) as i32)
    }

    /// What a checkpoint must agree on to be resumed by this run.
    fn fingerprint(&self) -> String {
        let w = &self.widths;
        format!(
            "widths {}/{}/{}/{} {}, data {} train {} test {} points noise {}, batch {}, lr {} decay {}, kl_anneal {}, scheme {} x{}, seed {}",
            w.latent,
            w.context,
            w.hidden,
            w.diffusion_hidden,
            w.activation.name(),
            self.n_train,
            self.n_test,
            self.points,
            self.noise_std,
            self.batch,
            self.lr,
            self.lr_decay,
            self.kl_anneal,
            self.setup.scheme.name(),
            self.setup.substeps,
            self.seed
        )
    }
}

/// What went wrong.
#[derive(Debug, Error)]
pub enum LatentSdeError {
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// A solve failed (non-finite state, bad path).
    #[error("iteration {iter}: {source}")]
    Solve {
        /// Iteration (1-based; 0 outside training).
        iter: usize,
        /// Cause.
        source: SdeError,
    },
    /// The loss is not finite; no update was made.
    #[error("iteration {iter}: the loss is {loss} (log-likelihood {log_lik}, KL z0 {kl_z0}, path KL {kl_path}); try a smaller --lr")]
    Diverged {
        /// Iteration (1-based).
        iter: usize,
        /// Loss.
        loss: f64,
        /// Log-likelihood.
        log_lik: f64,
        /// KL of `z_0`.
        kl_z0: f64,
        /// Path KL.
        kl_path: f64,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The checkpoint does not fit this run or is unreadable.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One iteration's figures (a line of `metrics.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IterRecord {
    /// Iteration (1-based).
    pub iter: usize,
    /// The objective minimised (KL terms weighted).
    pub loss: f64,
    /// Negative ELBO per series (unweighted).
    pub neg_elbo: f64,
    /// Log-likelihood per series.
    pub log_lik: f64,
    /// `KL(q(z_0) || p(z_0))` per series.
    pub kl_z0: f64,
    /// Path KL per series.
    pub kl_path: f64,
    /// KL weight used.
    pub kl_weight: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall time of the iteration (ms).
    pub ms: f64,
}

/// Held-out figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Negative ELBO per test series (KL weight 1, one posterior sample per series).
    pub neg_elbo: f64,
    /// Log-likelihood per test series.
    pub log_lik: f64,
    /// `KL(q(z_0) || p(z_0))` per test series.
    pub kl_z0: f64,
    /// Path KL per test series.
    pub kl_path: f64,
    /// Root-mean-square distance of a decoded posterior sample from the noiseless series
    /// (standardised units).
    pub recon_rmse: f64,
    /// Mean over times and coordinates of `|mean_prior - mean_data|` of the marginals at each
    /// observation time (standardised units; prior samples: as many as test series).
    pub prior_mean_gap: f64,
    /// The same for the standard deviations.
    pub prior_std_gap: f64,
}

/// Sample paths for figures, `[path][time][OBS_DIM]`.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Observation times.
    pub ts: Vec<f64>,
    /// Noisy observations of the chosen test series.
    pub data: Vec<Vec<[f32; 3]>>,
    /// Noiseless versions of the same series.
    pub clean: Vec<Vec<[f32; 3]>>,
    /// Posterior samples: `per_series` consecutive paths per chosen series.
    pub posterior: Vec<Vec<[f32; 3]>>,
    /// Posterior samples per chosen series.
    pub per_series: usize,
    /// Prior samples.
    pub prior: Vec<Vec<[f32; 3]>>,
}

/// The checkpoint's JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Iterations done.
    pub iter: usize,
    /// The settings' fingerprint.
    pub config: String,
    /// Weights file (in the output folder).
    pub weights: String,
    /// Optimiser state file (in the output folder).
    pub optim: String,
}

/// A seed for `(seed, stream, iteration)` (SplitMix64 finaliser: nearby inputs, unrelated seeds).
fn mix(seed: u64, stream: u64, it: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ it.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn normals(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..rows * cols).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), (device, DType::F32))
}

fn to_paths(t: Tensor<3>) -> Vec<Vec<[f32; 3]>> {
    let [rows, steps, d] = t.dims();
    let v = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    (0..rows).map(|r| (0..steps).map(|s| std::array::from_fn(|k| v[(r * steps + s) * d + k])).collect()).collect()
}

/// The data of a run: training and test observations and the standardisation.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// Training series.
    pub train: Observations,
    /// Held-out series.
    pub test: Observations,
    /// Standardisation fitted on the training paths.
    pub norm: Standardise,
}

impl DataSet {
    /// Simulate the training set from `seed` and the test set from `seed + 1000`.
    pub fn generate(cfg: &LatentSdeConfig) -> Result<Self, SdeError> {
        let (ts, raw) = data::simulate(&cfg.system, cfg.n_train, cfg.points, cfg.seed)?;
        let (ts_test, raw_test) = data::simulate(&cfg.system, cfg.n_test, cfg.points, cfg.seed + 1000)?;
        let norm = Standardise::fit(&raw);
        Ok(Self {
            train: data::observe(ts, &raw, &norm, cfg.noise_std, cfg.seed),
            test: data::observe(ts_test, &raw_test, &norm, cfg.noise_std, cfg.seed + 1000),
            norm,
        })
    }
}

/// The training loop's state.
pub struct LatentSdeTrainer {
    /// Settings.
    pub cfg: LatentSdeConfig,
    /// The networks (on the autodiff device).
    pub net: LatentSdeNet,
    /// Data.
    pub data: DataSet,
    opt: ModuleOptimizer,
    device: Device,
    iter: usize,
}

impl LatentSdeTrainer {
    /// A fresh run: data simulated, networks initialised from the seed.
    pub fn new(cfg: LatentSdeConfig) -> Result<Self, LatentSdeError> {
        cfg.validate().map_err(LatentSdeError::Config)?;
        let data = DataSet::generate(&cfg).map_err(|source| LatentSdeError::Solve { iter: 0, source })?;
        let device = Device::flex().autodiff();
        let net = LatentSdeNet::new(cfg.widths, cfg.seed, &device);
        let opt = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).init();
        Ok(Self { cfg, net, data, opt, device, iter: 0 })
    }

    /// Iterations done.
    pub fn iter(&self) -> usize {
        self.iter
    }

    /// The Brownian path of `rows` series with `channels` components on the solve grid.
    fn path(&self, seed: u64, rows: usize, channels: usize) -> Result<SeededBrownian, SdeError> {
        let ts = &self.data.train.ts;
        let (t0, t1) = (ts[0], ts[ts.len() - 1]);
        SeededBrownian::new(seed, t0, t1, rows, channels, (t1 - t0) / ((ts.len() - 1) * self.cfg.setup.substeps) as f64)
    }

    /// One iteration: batch, ELBO, backward pass, Adam update.
    pub fn step(&mut self) -> Result<IterRecord, LatentSdeError> {
        let start = Instant::now();
        let it = self.iter;
        let (cfg, l) = (&self.cfg, self.cfg.widths.latent);
        let solve_err = |source| LatentSdeError::Solve { iter: it + 1, source };
        let mut rng = StdRng::seed_from_u64(mix(cfg.seed, 1, it as u64));
        let idx = rand::seq::index::sample(&mut rng, cfg.n_train, cfg.batch).into_vec();
        let xs = self.data.train.batch(&idx, &self.device);
        let eps = normals(cfg.batch, l, mix(cfg.seed, 2, it as u64), &self.device);
        let mut path = self.path(mix(cfg.seed, 3, it as u64), cfg.batch, l + 1).map_err(solve_err)?;
        let (kl_weight, lr) = (cfg.kl_weight(it), cfg.lr_at(it));
        let ts = self.data.train.ts.clone();
        let e = self.net.elbo(xs, &ts, eps, &mut path, cfg.setup, cfg.noise_std, kl_weight).map_err(solve_err)?;
        let loss = e.loss.clone().into_scalar::<f64>();
        if !loss.is_finite() {
            return Err(LatentSdeError::Diverged { iter: it + 1, loss, log_lik: e.log_lik, kl_z0: e.kl_z0, kl_path: e.kl_path });
        }
        let grads = e.loss.backward();
        let gp = GradientsParams::from_grads(grads, &self.net);
        self.net = self.opt.step(lr, self.net.clone(), gp);
        self.iter += 1;
        Ok(IterRecord {
            iter: it + 1,
            loss,
            neg_elbo: -(e.log_lik - e.kl_z0 - e.kl_path),
            log_lik: e.log_lik,
            kl_z0: e.kl_z0,
            kl_path: e.kl_path,
            kl_weight,
            lr,
            ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Held-out figures of the current networks (see [`Evaluation`]); deterministic for a given
    /// seed and state.
    pub fn evaluate(&self) -> Result<Evaluation, LatentSdeError> {
        evaluate(&self.net.clone().valid(), &self.data.test, &self.cfg)
    }

    /// Held-out figures of the networks this run started from (the seed's initialisation).
    pub fn evaluate_untrained(&self) -> Result<Evaluation, LatentSdeError> {
        evaluate(&LatentSdeNet::new(self.cfg.widths, self.cfg.seed, &Device::flex()), &self.data.test, &self.cfg)
    }

    /// Sample paths for figures: `series` test series (noisy and clean), `per_series` posterior
    /// samples of each, and `prior` prior samples.
    pub fn samples(&self, series: usize, per_series: usize, prior: usize) -> Result<Samples, LatentSdeError> {
        samples(&self.net.clone().valid(), &self.data.test, &self.cfg, series, per_series, prior)
    }

    /// Write a checkpoint into `out` (weights, optimiser state, then the JSON naming them).
    pub fn save_checkpoint(&mut self, out: &Path) -> Result<(), LatentSdeError> {
        let (weights, optim) = (format!("ckpt-{}.safetensors", self.iter), format!("ckpt-{}.optim", self.iter));
        save_module(&self.net, MODEL_NAME, &out.join(&weights), &[("iter", self.iter.to_string())], true)?;
        let bytes = self.opt.into_bytes().map_err(|e| LatentSdeError::Checkpoint { path: out.join(&optim), reason: format!("{e:?}") })?;
        write_atomic(&out.join(&optim), &bytes)?;
        let previous = read_checkpoint(out).ok().flatten();
        let ck = Checkpoint { iter: self.iter, config: self.cfg.fingerprint(), weights, optim };
        let json = serde_json::to_string_pretty(&ck)
            .map_err(|e| LatentSdeError::Checkpoint { path: out.join(CHECKPOINT), reason: e.to_string() })?;
        write_atomic(&out.join(CHECKPOINT), json.as_bytes())?;
        // The previous checkpoint's files are no longer named by any checkpoint.
        if let Some(p) = previous.filter(|p| p.iter != ck.iter) {
            let _ = std::fs::remove_file(out.join(&p.weights));
            let _ = std::fs::remove_file(out.join(&p.optim));
        }
        Ok(())
    }

    /// Continue from the checkpoint in `out`, if there is one; returns the iteration reached.
    pub fn resume(&mut self, out: &Path) -> Result<usize, LatentSdeError> {
        let path = out.join(CHECKPOINT);
        let Some(ck) = read_checkpoint(out)? else { return Ok(0) };
        let bad = |reason: String| LatentSdeError::Checkpoint { path: path.clone(), reason };
        if ck.config != self.cfg.fingerprint() {
            return Err(bad(format!(
                "made with other settings ({}); this run has ({}); use another --out or delete the checkpoint",
                ck.config,
                self.cfg.fingerprint()
            )));
        }
        if ck.iter > self.cfg.iters {
            return Err(bad(format!("it is at iteration {}, past this run's {} iterations", ck.iter, self.cfg.iters)));
        }
        let net = std::mem::replace(&mut self.net, LatentSdeNet::new(self.cfg.widths, self.cfg.seed, &self.device));
        self.net = load_module(net, MODEL_NAME, &out.join(&ck.weights))?;
        let optim_path = out.join(&ck.optim);
        let bytes = read_capped(&optim_path, MAX_WEIGHTS_BYTES, "an optimiser state")?;
        let opt = std::mem::replace(&mut self.opt, AdamConfig::new().init());
        self.opt = opt
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| LatentSdeError::Checkpoint { path: optim_path, reason: format!("{e:?}") })?;
        self.iter = ck.iter;
        Ok(ck.iter)
    }

    /// Save the final weights with the settings needed to use them again as metadata (see
    /// [`TrainedModel::load`]).
    pub fn save_weights(&self, path: &Path) -> Result<(), LatentSdeError> {
        let (c, w, n) = (&self.cfg, &self.cfg.widths, &self.data.norm);
        let meta = [
            ("iters", self.iter.to_string()),
            ("latent", w.latent.to_string()),
            ("context", w.context.to_string()),
            ("hidden", w.hidden.to_string()),
            ("diffusion_hidden", w.diffusion_hidden.to_string()),
            ("activation", w.activation.name().to_string()),
            ("scheme", c.setup.scheme.name().to_string()),
            ("substeps", c.setup.substeps.to_string()),
            ("points", c.points.to_string()),
            ("noise_std", c.noise_std.to_string()),
            ("seed", c.seed.to_string()),
            ("n_test", c.n_test.to_string()),
            ("standardise_mean", serde_json::to_string(&n.mean).unwrap_or_default()),
            ("standardise_std", serde_json::to_string(&n.std).unwrap_or_default()),
        ];
        Ok(save_module(&self.net, MODEL_NAME, path, &meta, false)?)
    }
}

/// Final weights and the settings stored with them.
pub struct TrainedModel {
    /// The networks (plain device).
    pub net: LatentSdeNet,
    /// The run's settings as far as evaluation needs them (widths, solver, data, seed).
    pub cfg: LatentSdeConfig,
    /// The standardisation of the run's training data.
    pub norm: Standardise,
    /// Iterations trained.
    pub iters: usize,
}

impl TrainedModel {
    /// Load weights written by [`LatentSdeTrainer::save_weights`]; every setting is read from
    /// the file's metadata and checked (a missing or malformed one names its key).
    pub fn load(path: &Path) -> Result<Self, LatentSdeError> {
        let meta = nodal::module_weights::read_metadata(path)?;
        let bad = |reason: String| LatentSdeError::File(FileError::Format { path: path.to_path_buf(), reason });
        let get = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata lacks `{k}` (not a latent-SDE weights file?)")));
        fn parse<T: std::str::FromStr>(v: &str, k: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("metadata `{k}` = {v:?} is malformed"))
        }
        let num = |k: &str| -> Result<usize, LatentSdeError> { parse(get(k)?, k).map_err(bad) };
        let arr = |k: &str| -> Result<[f64; OBS_DIM], LatentSdeError> {
            serde_json::from_str(get(k)?).map_err(|e| bad(format!("metadata `{k}`: {e}")))
        };
        let activation = Activation::parse(get("activation")?).ok_or_else(|| bad("metadata `activation` is unknown".into()))?;
        let scheme = Scheme::by_name(get("scheme")?).ok_or_else(|| bad("metadata `scheme` is unknown".into()))?;
        let widths = Widths {
            latent: num("latent")?,
            context: num("context")?,
            hidden: num("hidden")?,
            diffusion_hidden: num("diffusion_hidden")?,
            activation,
        };
        let cfg = LatentSdeConfig {
            widths,
            points: num("points")?,
            n_test: num("n_test")?,
            noise_std: parse(get("noise_std")?, "noise_std").map_err(bad)?,
            seed: parse(get("seed")?, "seed").map_err(bad)?,
            setup: SolveSetup { scheme, substeps: num("substeps")? },
            ..LatentSdeConfig::default()
        };
        let cfg = LatentSdeConfig { n_train: cfg.n_train.max(1), batch: cfg.batch.min(cfg.n_train), ..cfg };
        cfg.validate().map_err(|e| bad(format!("metadata: {e}")))?;
        let norm = Standardise { mean: arr("standardise_mean")?, std: arr("standardise_std")? };
        let net = load_module(LatentSdeNet::new(widths, 0, &Device::flex()), MODEL_NAME, path)?;
        Ok(Self { net, cfg, norm, iters: num("iters")? })
    }

    /// The run's held-out series: simulated from `seed + 1000`, standardised with the training
    /// statistics stored in the weights.
    pub fn test_set(&self) -> Result<Observations, LatentSdeError> {
        let c = &self.cfg;
        let (ts, raw) =
            data::simulate(&c.system, c.n_test, c.points, c.seed + 1000).map_err(|source| LatentSdeError::Solve { iter: 0, source })?;
        Ok(data::observe(ts, &raw, &self.norm, c.noise_std, c.seed + 1000))
    }
}

/// The checkpoint in `out`, `None` when there is none.
fn read_checkpoint(out: &Path) -> Result<Option<Checkpoint>, LatentSdeError> {
    let path = out.join(CHECKPOINT);
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |reason: String| LatentSdeError::Checkpoint { path: path.clone(), reason };
    let text = read_text_capped(&path, MAX_JSON_BYTES, "a checkpoint").map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| bad(e.to_string()))
}

/// Test-set figures of `net` (plain device).
pub fn evaluate(net: &LatentSdeNet, test: &Observations, cfg: &LatentSdeConfig) -> Result<Evaluation, LatentSdeError> {
    let device = Device::flex();
    let l = cfg.widths.latent;
    let err = |source| LatentSdeError::Solve { iter: 0, source };
    let n = test.series;
    let chunk = 256.min(n);
    let (mut sums, mut sq) = ([0.0f64; 4], 0.0f64);
    let steps = test.ts.len();
    let mut recon_all = Vec::with_capacity(n * steps * OBS_DIM);
    for (c, start) in (0..n).step_by(chunk).enumerate() {
        let idx: Vec<usize> = (start..(start + chunk).min(n)).collect();
        let rows = idx.len();
        let xs = test.batch(&idx, &device);
        let eps = normals(rows, l, mix(cfg.seed, 4, c as u64), &device);
        let (t0, t1) = (test.ts[0], test.ts[steps - 1]);
        let cell = (t1 - t0) / ((steps - 1) * cfg.setup.substeps) as f64;
        let mut path = SeededBrownian::new(mix(cfg.seed, 5, c as u64), t0, t1, rows, l + 1, cell).map_err(err)?;
        let e = net.elbo(xs, &test.ts, eps, &mut path, cfg.setup, cfg.noise_std, 1.0).map_err(err)?;
        for (s, v) in sums.iter_mut().zip([e.neg_elbo(), e.log_lik, e.kl_z0, e.kl_path]) {
            *s += v * rows as f64;
        }
        let recon = e.recon.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
        for (k, r) in recon.iter().enumerate() {
            sq += (*r as f64 - test.clean[start * steps * OBS_DIM + k] as f64).powi(2);
        }
        recon_all.extend(recon);
    }
    // Prior marginals against the test data's, at every observation time.
    let eps = normals(n, l, mix(cfg.seed, 6, 0), &device);
    let (t0, t1) = (test.ts[0], test.ts[steps - 1]);
    let mut path =
        SeededBrownian::new(mix(cfg.seed, 7, 0), t0, t1, n, l, (t1 - t0) / ((steps - 1) * cfg.setup.substeps) as f64).map_err(err)?;
    let prior = net.sample_prior(&test.ts, eps, &mut path, cfg.setup).map_err(err)?;
    let prior = prior.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    let (mean_gap, std_gap) = marginal_gaps(&prior, &test.clean, n, steps);
    let nf = n as f64;
    Ok(Evaluation {
        neg_elbo: sums[0] / nf,
        log_lik: sums[1] / nf,
        kl_z0: sums[2] / nf,
        kl_path: sums[3] / nf,
        recon_rmse: (sq / (n * steps * OBS_DIM) as f64).sqrt(),
        prior_mean_gap: mean_gap,
        prior_std_gap: std_gap,
    })
}

/// Mean over times and coordinates of the gaps between the per-time means and standard
/// deviations of two sets of `n` paths (`[n][steps][OBS_DIM]`).
pub fn marginal_gaps(a: &[f32], b: &[f32], n: usize, steps: usize) -> (f64, f64) {
    let moments = |v: &[f32], s: usize, d: usize| {
        let xs = (0..n).map(|r| v[(r * steps + s) * OBS_DIM + d] as f64);
        let m = xs.clone().sum::<f64>() / n as f64;
        let var = xs.map(|x| (x - m).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        (m, var.sqrt())
    };
    let (mut gm, mut gs) = (0.0, 0.0);
    for s in 0..steps {
        for d in 0..OBS_DIM {
            let ((ma, sa), (mb, sb)) = (moments(a, s, d), moments(b, s, d));
            gm += (ma - mb).abs();
            gs += (sa - sb).abs();
        }
    }
    let k = (steps * OBS_DIM) as f64;
    (gm / k, gs / k)
}

/// Figure paths of `net` on the first `series` test series (see [`LatentSdeTrainer::samples`]).
pub fn samples(
    net: &LatentSdeNet,
    test: &Observations,
    cfg: &LatentSdeConfig,
    series: usize,
    per_series: usize,
    prior: usize,
) -> Result<Samples, LatentSdeError> {
    let device = Device::flex();
    let l = cfg.widths.latent;
    let err = |source| LatentSdeError::Solve { iter: 0, source };
    let series = series.clamp(1, test.series);
    let per_series = per_series.max(1);
    let steps = test.ts.len();
    let (t0, t1) = (test.ts[0], test.ts[steps - 1]);
    let cell = (t1 - t0) / ((steps - 1) * cfg.setup.substeps) as f64;
    let pick =
        |v: &[f32], r: usize| -> Vec<[f32; 3]> { (0..steps).map(|s| std::array::from_fn(|k| v[(r * steps + s) * OBS_DIM + k])).collect() };
    let data = (0..series).map(|r| pick(&test.xs, r)).collect();
    let clean = (0..series).map(|r| pick(&test.clean, r)).collect();
    let idx: Vec<usize> = (0..series).flat_map(|r| std::iter::repeat_n(r, per_series)).collect();
    let rows = idx.len();
    let eps = normals(rows, l, mix(cfg.seed, 8, 0), &device);
    let mut path = SeededBrownian::new(mix(cfg.seed, 9, 0), t0, t1, rows, l + 1, cell).map_err(err)?;
    let e = net.elbo(test.batch(&idx, &device), &test.ts, eps, &mut path, cfg.setup, cfg.noise_std, 1.0).map_err(err)?;
    let prior_rows = prior.max(1);
    let eps = normals(prior_rows, l, mix(cfg.seed, 10, 0), &device);
    let mut path = SeededBrownian::new(mix(cfg.seed, 11, 0), t0, t1, prior_rows, l, cell).map_err(err)?;
    let p = net.sample_prior(&test.ts, eps, &mut path, cfg.setup).map_err(err)?;
    Ok(Samples { ts: test.ts.clone(), data, clean, posterior: to_paths(e.recon), per_series, prior: to_paths(p) })
}
