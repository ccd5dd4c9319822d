//! Interacting particles learned as a neural ODE: a [`SetTransformer`] vector field over the
//! particles, trained on 5-particle trajectories of a spring system ([`system`]), and tested on
//! held-out initial conditions with 5, 8 and 12 particles; an MLP field on the flattened state
//! as the baseline (its input width fixes the particle count, so it is trained once on
//! 5-particle and once on 12-particle trajectories).
//!
//! Training fits rollouts: a window of `window` observation intervals from a random start on a
//! random training trajectory, solved by RK4 at a fixed step with backprop through the solver,
//! loss the mean squared error of the states at the window's observation times. Testing rolls
//! out the whole horizon from `t = 0` with dopri5 and reports the RMS position error at every
//! observation time.

pub mod system;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::blocks::transformer::{SetTransformer, SetTransformerConfig};
use nodal::neural_ode::shaped::Shaped;
use nodal::neural_ode::{NeuralOde, OdeFunc, OdeSettings};
use nodal::solve::tableau::{DOPRI5, RK4};
use nodal::solve::{SolveError, SolveOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;
use system::{FEATURES, Springs, initial_states};

/// Settings of the experiment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ParticlesConfig {
    /// The physical system.
    pub system: Springs,
    /// Particles in the training trajectories.
    pub train_particles: usize,
    /// Particle counts tested.
    pub test_particles: Vec<usize>,
    /// Training trajectories.
    pub train_trajectories: usize,
    /// Held-out trajectories per particle count.
    pub test_trajectories: usize,
    /// Length of every trajectory.
    pub horizon: f64,
    /// Interval between observations.
    pub obs_dt: f64,
    /// Observation intervals per training rollout.
    pub window: usize,
    /// RK4 step of the training rollouts.
    pub step: f64,
    /// Windows per training step.
    pub batch: usize,
    /// Training steps per model.
    pub iters: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Transformer width.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Hidden width of the MLP field (two hidden layers) and of the Transformer's MLPs.
    pub mlp_hidden: usize,
    /// Relative tolerance of the test rollouts (dopri5).
    pub test_rtol: f64,
    /// Seed of data and initialisation.
    pub seed: u64,
}

impl Default for ParticlesConfig {
    fn default() -> Self {
        Self {
            system: Springs::default(),
            train_particles: 5,
            test_particles: vec![5, 8, 12],
            train_trajectories: 64,
            test_trajectories: 16,
            horizon: 3.0,
            obs_dt: 0.1,
            window: 5,
            step: 0.05,
            batch: 16,
            iters: 3000,
            lr: 3e-3,
            width: 32,
            heads: 4,
            layers: 2,
            mlp_hidden: 128,
            test_rtol: 1e-6,
            seed: 0,
        }
    }
}

impl ParticlesConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |v: f64, name: &str| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} must be positive and finite, got {v}")) }
        };
        pos(self.horizon, "horizon")?;
        pos(self.obs_dt, "obs_dt")?;
        pos(self.step, "step")?;
        pos(self.lr, "lr")?;
        pos(self.test_rtol, "test_rtol")?;
        pos(self.system.stiffness, "stiffness")?;
        if self.train_particles < 2 || self.test_particles.iter().any(|&n| n < 2) {
            return Err("every particle count must be at least 2".into());
        }
        if self.observations() <= self.window || self.window == 0 {
            return Err(format!(
                "window ({}) must be between 1 and the observations per trajectory less one ({})",
                self.window,
                self.observations() - 1
            ));
        }
        if self.batch == 0 || self.train_trajectories == 0 || self.test_trajectories == 0 || self.width == 0 || self.mlp_hidden == 0 {
            return Err("batch, trajectories, width and mlp_hidden must be positive".into());
        }
        if self.heads == 0 || self.width % self.heads != 0 {
            return Err(format!("heads ({}) must divide width ({})", self.heads, self.width));
        }
        Ok(())
    }

    /// Observation times per trajectory, `t = 0` included.
    pub fn observations(&self) -> usize {
        (self.horizon / self.obs_dt).round() as usize + 1
    }

    /// The observation times.
    pub fn times(&self) -> Vec<f64> {
        (0..self.observations()).map(|i| i as f64 * self.obs_dt).collect()
    }
}

/// Trajectories of one particle count: `states[k]` is the batch `[count][n][4]` at `times[k]`.
#[derive(Debug, Clone)]
pub struct Trajectories {
    /// Particles per sample.
    pub particles: usize,
    /// Samples.
    pub count: usize,
    /// Observation times.
    pub times: Vec<f64>,
    /// States at the observation times.
    pub states: Vec<Vec<f64>>,
}

impl Trajectories {
    /// Simulate `count` trajectories of `n` particles from seeded initial states.
    pub fn simulate(cfg: &ParticlesConfig, n: usize, count: usize, seed: u64) -> Result<Self, SolveError> {
        let times = cfg.times();
        let y0 = initial_states(n, count, seed);
        let states = cfg.system.simulate(n, &y0, &times)?;
        Ok(Self { particles: n, count, times, states })
    }

    /// Sample `i`'s state at observation `k`.
    pub fn sample(&self, k: usize, i: usize) -> &[f64] {
        let w = self.particles * FEATURES;
        &self.states[k][i * w..(i + 1) * w]
    }
}

/// The MLP baseline: `[batch, n · 4] -> [batch, n · 4]`, two tanh hidden layers, autonomous.
#[derive(Module, Debug)]
pub struct MlpField {
    /// Input layer.
    pub l1: Linear,
    /// Hidden layer.
    pub l2: Linear,
    /// Output layer.
    pub l3: Linear,
}

impl MlpField {
    /// For `n` particles with `hidden` units per layer.
    pub fn new(n: usize, hidden: usize, device: &Device) -> Self {
        let d = n * FEATURES;
        Self {
            l1: LinearConfig::new(d, hidden).init(device),
            l2: LinearConfig::new(hidden, hidden).init(device),
            l3: LinearConfig::new(hidden, d).init(device),
        }
    }

    /// Particles the field was built for.
    pub fn particles(&self) -> usize {
        self.l1.weight.dims()[0] / FEATURES
    }
}

impl OdeFunc for MlpField {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        self.l3.forward(self.l2.forward(self.l1.forward(y).tanh()).tanh())
    }
}

/// A vector field over particle states `[batch, n, 4]` solved as a neural ODE.
pub trait ParticleModel: Module + Clone {
    /// The states at `ts` from `y0` (`[batch, n, 4]`); an error for particle counts the model
    /// cannot take.
    fn rollout(&self, y0: Tensor<3>, ts: &[f64]) -> Result<Vec<Tensor<3>>, SolveError>;
    /// Name in tables.
    fn name(&self) -> &'static str;
}

/// The Transformer field as a neural ODE on `[batch, n, 4]`.
pub type TransformerOde = NeuralOde<Shaped<SetTransformer, 3>>;
/// The MLP field as a neural ODE on flattened states.
pub type MlpOde = NeuralOde<MlpField>;

impl ParticleModel for TransformerOde {
    fn rollout(&self, y0: Tensor<3>, ts: &[f64]) -> Result<Vec<Tensor<3>>, SolveError> {
        // The field takes any number of tokens: adopt the sample shape of the input.
        let mut ode = self.clone();
        ode.func.sample_shape = y0.dims()[1..].to_vec();
        Ok(ode.forward_shaped(y0, ts)?.states)
    }
    fn name(&self) -> &'static str {
        "transformer"
    }
}

impl ParticleModel for MlpOde {
    fn rollout(&self, y0: Tensor<3>, ts: &[f64]) -> Result<Vec<Tensor<3>>, SolveError> {
        let [b, n, f] = y0.dims();
        if n != self.func.particles() {
            return Err(SolveError::Shape(format!(
                "the MLP field was built for {} particles (input width {}), the state has {n}",
                self.func.particles(),
                self.func.particles() * FEATURES
            )));
        }
        let out = self.forward(y0.reshape([b, n * f]), ts)?;
        Ok((0..ts.len()).map(|k| out.ys.clone().slice([k..k + 1, 0..b, 0..n * f]).reshape([b, n, f])).collect())
    }
    fn name(&self) -> &'static str {
        "mlp"
    }
}

fn settings(cfg: &ParticlesConfig) -> (OdeSettings, OdeSettings) {
    let train = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(cfg.step));
    let eval = OdeSettings::new(SolveOptions::new(&DOPRI5).with_tol(cfg.test_rtol, cfg.test_rtol * 1e-2));
    (train, eval)
}

/// The Transformer neural ODE of `cfg` (seeded).
pub fn transformer(cfg: &ParticlesConfig, device: &Device) -> TransformerOde {
    device.seed(cfg.seed ^ 0x7A5F);
    let field = SetTransformerConfig {
        token_features: FEATURES,
        width: cfg.width,
        heads: cfg.heads,
        layers: cfg.layers,
        mlp_width: cfg.mlp_hidden,
        time_features: 16,
    }
    .init(device);
    let (train, eval) = settings(cfg);
    NeuralOde::new(Shaped::new(field, &[cfg.train_particles, FEATURES]), train, eval)
}

/// The MLP neural ODE of `cfg` for `n` particles (seeded).
pub fn mlp(cfg: &ParticlesConfig, n: usize, device: &Device) -> MlpOde {
    device.seed(cfg.seed ^ 0x3B1D ^ n as u64);
    let (train, eval) = settings(cfg);
    NeuralOde::new(MlpField::new(n, cfg.mlp_hidden, device), train, eval)
}

/// Why training or testing failed.
#[derive(Debug, thiserror::Error)]
pub enum ParticlesError {
    /// A solve (simulation, training rollout or test rollout).
    #[error(transparent)]
    Solve(#[from] SolveError),
    /// The training loss stopped being finite.
    #[error("training diverged at step {iter}: the loss is {loss} (lower --lr)")]
    Diverged {
        /// Step index.
        iter: usize,
        /// The loss.
        loss: f64,
    },
}

/// One training step's record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRecord {
    /// Step index (from 0).
    pub iter: usize,
    /// Mean squared error of the window's states.
    pub loss: f64,
    /// Wall-clock milliseconds of the step (solve, backward, Adam).
    pub ms: f64,
}

fn batch_tensor(rows: Vec<f64>, b: usize, n: usize, device: &Device) -> Tensor<3> {
    let v: Vec<f32> = rows.into_iter().map(|x| x as f32).collect();
    Tensor::<3>::from_data(TensorData::new(v, [b, n, FEATURES]), (device, DType::F32))
}

/// Train `model` on `data` (autodiff device) for `cfg.iters` steps of Adam, calling `on_step`
/// after each; returns the trained model.
pub fn train<M: ParticleModel>(
    cfg: &ParticlesConfig,
    mut model: M,
    data: &Trajectories,
    device: &Device,
    mut on_step: impl FnMut(&StepRecord),
) -> Result<M, ParticlesError> {
    let mut opt: ModuleOptimizer = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(0xDA7A));
    let n = data.particles;
    let last_start = data.times.len() - 1 - cfg.window;
    let ts: Vec<f64> = (0..=cfg.window).map(|k| k as f64 * cfg.obs_dt).collect();
    for iter in 0..cfg.iters {
        let start = Instant::now();
        let picks: Vec<(usize, usize)> = (0..cfg.batch).map(|_| (rng.gen_range(0..data.count), rng.gen_range(0..=last_start))).collect();
        let gather = |offset: usize| picks.iter().flat_map(|&(i, k)| data.sample(k + offset, i).to_vec()).collect::<Vec<f64>>();
        let y0 = batch_tensor(gather(0), cfg.batch, n, device);
        let states = model.rollout(y0, &ts)?;
        let mut loss = Tensor::<1>::zeros([1], (device, DType::F32));
        for (k, pred) in states.into_iter().enumerate().skip(1) {
            let truth = batch_tensor(gather(k), cfg.batch, n, device);
            loss = loss + (pred - truth).square().mean().reshape([1]);
        }
        let loss = loss / cfg.window as f64;
        let value = loss.clone().into_data().convert::<f64>().try_into_vec::<f64>().map(|v| v[0]).unwrap_or(f64::NAN);
        if !value.is_finite() {
            return Err(ParticlesError::Diverged { iter, loss: value });
        }
        let grads = loss.backward();
        let gp = GradientsParams::from_grads(grads, &model);
        // Cosine decay to a tenth of the rate.
        let lr = cfg.lr * (0.1 + 0.45 * (1.0 + (std::f64::consts::PI * iter as f64 / cfg.iters as f64).cos()));
        model = opt.step(lr, model, gp);
        on_step(&StepRecord { iter, loss: value, ms: start.elapsed().as_secs_f64() * 1e3 });
    }
    Ok(model)
}

/// RMS position error of `model`'s rollouts from `t = 0` against `data`, at every observation
/// time (`[0]` is 0: the rollouts start on the truth).
pub fn rollout_errors<M: ParticleModel>(model: &M, data: &Trajectories, device: &Device) -> Result<Vec<f64>, SolveError> {
    let n = data.particles;
    let y0 = batch_tensor(data.states[0].clone(), data.count, n, device);
    let states = model.rollout(y0, &data.times)?;
    let mut out = Vec::with_capacity(states.len());
    for (k, pred) in states.into_iter().enumerate() {
        let p: Vec<f64> = pred.into_data().convert::<f64>().try_into_vec::<f64>().expect("f64 values");
        let mut sq = 0.0;
        for (a, b) in p.chunks(FEATURES).zip(data.states[k].chunks(FEATURES)) {
            sq += (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
        }
        out.push((sq / (2 * data.count * n) as f64).sqrt());
    }
    Ok(out)
}

/// The mean of the errors after `t = 0` (the summary's `rollout_error`).
pub fn mean_error(errors: &[f64]) -> f64 {
    errors[1..].iter().sum::<f64>() / (errors.len() - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short run: the loss falls, the Transformer rolls out any particle count and the MLP
    /// refuses a count it was not built for.
    #[test]
    fn training_lowers_the_loss_and_counts_are_checked() {
        let cfg = ParticlesConfig {
            train_trajectories: 8,
            test_trajectories: 2,
            iters: 30,
            batch: 4,
            width: 16,
            heads: 2,
            layers: 1,
            mlp_hidden: 32,
            horizon: 1.0,
            ..ParticlesConfig::default()
        };
        cfg.validate().unwrap();
        let dev = Device::flex().autodiff();
        let data = Trajectories::simulate(&cfg, 5, cfg.train_trajectories, 1).unwrap();
        let mut losses = Vec::new();
        let model = train(&cfg, transformer(&cfg, &dev), &data, &dev, |r| losses.push(r.loss)).unwrap();
        let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
        let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(last < 0.7 * first, "loss {first} -> {last}");
        let plain = Device::flex();
        let model = model.valid();
        for n in [5, 8] {
            let test = Trajectories::simulate(&cfg, n, 2, 99).unwrap();
            let e = rollout_errors(&model, &test, &plain).unwrap();
            assert_eq!(e.len(), test.times.len());
            assert!(e[0] < 1e-6 && e.iter().all(|v| v.is_finite()), "{e:?}");
        }
        let m = mlp(&cfg, 5, &plain);
        let test = Trajectories::simulate(&cfg, 8, 2, 99).unwrap();
        let err = rollout_errors(&m, &test, &plain).unwrap_err().to_string();
        assert!(err.contains("5 particles") && err.contains("8"), "{err}");
    }
}
