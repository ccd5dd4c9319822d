//! torchdiffeq's classic spiral demo (Chen et al. 2018, the `ode_demo` example): learn
//! `dy/dt = (y^3) A`, `A = [[-0.1, 2.0], [-2.0, -0.1]]`, `y(0) = [2, 0]`, from its trajectory on
//! `t = linspace(0, 25, 1000)`, with the model `f(t, y) = Linear(2, 50) -> tanh -> Linear(50, 2)`
//! applied to `y^3`, mini-batches of 20 random windows of 10 time points, an L1 loss, and
//! RMSprop (lr 1e-3). Solves use dopri5 at rtol 1e-7, atol 1e-9 (f32, as the anchors).

use crate::flat_optim::FlatOptimizer;
use nodal_solve::JvpDynamics;
use nodal_solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal_solve::mlp::Mlp;
use nodal_solve::regularise::{Penalty, RegulariseError, Regularised};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{Dynamics, FnDynamics, RmsNorm, SolveError, SolveOptions, VjpDynamics, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// The true dynamics' matrix: `dy/dt = (y^3) A` with `y` a row vector.
pub const TRUE_A: [[f64; 2]; 2] = [[-0.1, 2.0], [-2.0, -0.1]];
/// Number of points of the true trajectory.
pub const DATA_SIZE: usize = 1000;
/// Final time of the trajectory.
pub const T_END: f64 = 25.0;
/// Most iterations a run may have (a resumed run replays its sampler up to here).
pub const MAX_ITERS: usize = 10_000_000;

/// The learned dynamics: an MLP applied to the elementwise cube of the state.
#[derive(Debug, Clone)]
pub struct CubedMlp {
    /// The 2-50-2 network; its flat parameters are `[W1, b1, W2, b2]`.
    pub mlp: Mlp<f32>,
    cubed: Vec<f32>,
    /// Buffers of the forward-mode products (`3 y^2 v` and its adjoint), reused across calls.
    jvp_w: Vec<f32>,
    jvp_adj: Vec<f32>,
}

impl CubedMlp {
    /// Torchdiffeq's initialisation: weights normal(0, 0.1), biases zero.
    pub fn init(seed: u64, hidden: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = Normal::new(0.0f32, 0.1).expect("valid normal");
        let (d, h) = (2, hidden);
        let mut p = Vec::with_capacity(Mlp::<f32>::num_params_for(d, h));
        p.extend((0..h * d).map(|_| n.sample(&mut rng)));
        p.extend(std::iter::repeat_n(0.0, h));
        p.extend((0..d * h).map(|_| n.sample(&mut rng)));
        p.extend([0.0, 0.0]);
        Self::from_params(hidden, p).expect("sizes")
    }

    /// From flat parameters `[W1 (h x 2), b1 (h), W2 (2 x h), b2 (2)]`.
    pub fn from_params(hidden: usize, p: Vec<f32>) -> Option<Self> {
        let mut mlp = Mlp::new(2, hidden, p)?;
        mlp.set_threads(1); // tiny batches: no threading
        Some(Self { mlp, cubed: Vec::new(), jvp_w: Vec::new(), jvp_adj: Vec::new() })
    }

    fn cube(&mut self, y: &[f32]) {
        self.cubed.clear();
        self.cubed.extend(y.iter().map(|v| v * v * v));
    }
}

impl Dynamics<Vec<f32>> for CubedMlp {
    fn eval(&mut self, t: f64, y: &Vec<f32>, dy: &mut Vec<f32>) {
        self.cube(y);
        let c = std::mem::take(&mut self.cubed);
        self.mlp.eval(t, &c, dy);
        self.cubed = c;
    }
}

impl VjpDynamics<Vec<f32>> for CubedMlp {
    type Params = Vec<f32>;
    fn param_zeros(&self) -> Vec<f32> {
        self.mlp.param_zeros()
    }
    fn vjp(&mut self, t: f64, y: &Vec<f32>, a: &Vec<f32>, adj_y: &mut Vec<f32>, adj_p: &mut Vec<f32>) {
        self.cube(y);
        let c = std::mem::take(&mut self.cubed);
        self.mlp.vjp(t, &c, a, adj_y, adj_p);
        self.cubed = c;
        for (g, v) in adj_y.iter_mut().zip(y) {
            *g *= 3.0 * v * v;
        }
    }
    fn eval_and_vjp(&mut self, t: f64, y: &Vec<f32>, a: &Vec<f32>, dy: &mut Vec<f32>, adj_y: &mut Vec<f32>, adj_p: &mut Vec<f32>) {
        self.cube(y);
        let c = std::mem::take(&mut self.cubed);
        self.mlp.eval_and_vjp(t, &c, a, dy, adj_y, adj_p);
        self.cubed = c;
        for (g, v) in adj_y.iter_mut().zip(y) {
            *g *= 3.0 * v * v;
        }
    }
}

/// Forward-mode products through the cube: with `x = y^3` and `w = 3 y^2 v`, `J v = J_mlp(x) w`;
/// the reverse adds the cube's second derivative, `adj_y = 3 y^2 adj_x + 6 y v adj_w`.
impl JvpDynamics<Vec<f32>> for CubedMlp {
    fn eval_and_jvp(&mut self, t: f64, y: &Vec<f32>, v: &Vec<f32>, dy: &mut Vec<f32>, jv: &mut Vec<f32>) {
        self.cube(y);
        let c = std::mem::take(&mut self.cubed);
        let mut w = std::mem::take(&mut self.jvp_w);
        w.clear();
        w.extend(y.iter().zip(v).map(|(y, v)| 3.0 * y * y * v));
        self.mlp.eval_and_jvp(t, &c, &w, dy, jv);
        self.cubed = c;
        self.jvp_w = w;
    }
    fn jvp_vjp(
        &mut self,
        t: f64,
        y: &Vec<f32>,
        v: &Vec<f32>,
        cot: &Vec<f32>,
        adj_y: &mut Vec<f32>,
        adj_v: &mut Vec<f32>,
        adj_p: &mut Vec<f32>,
    ) {
        self.cube(y);
        let c = std::mem::take(&mut self.cubed);
        let mut w = std::mem::take(&mut self.jvp_w);
        w.clear();
        w.extend(y.iter().zip(v).map(|(y, v)| 3.0 * y * y * v));
        let mut adj_w = std::mem::take(&mut self.jvp_adj);
        adj_w.resize(y.len(), 0.0);
        self.mlp.jvp_vjp(t, &c, &w, cot, adj_y, &mut adj_w, adj_p);
        self.cubed = c;
        self.jvp_w = w;
        for i in 0..y.len() {
            let (yi, vi) = (y[i], v[i]);
            adj_y[i] = 3.0 * yi * yi * adj_y[i] + 6.0 * yi * vi * adj_w[i];
            adj_v[i] = 3.0 * yi * yi * adj_w[i];
        }
        self.jvp_adj = adj_w;
    }
}

/// The true trajectory: times and states (`[DATA_SIZE][2]`, flattened), from a float64 dopri5
/// solve at rtol 1e-10, atol 1e-12.
pub fn true_trajectory() -> (Vec<f64>, Vec<[f64; 2]>) {
    let ts: Vec<f64> = (0..DATA_SIZE).map(|i| T_END * i as f64 / (DATA_SIZE - 1) as f64).collect();
    let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| {
        let (a, b) = (y[0].powi(3), y[1].powi(3));
        dy[0] = a * TRUE_A[0][0] + b * TRUE_A[1][0];
        dy[1] = a * TRUE_A[0][1] + b * TRUE_A[1][1];
    });
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-12).with_max_steps(1_000_000);
    let sol = solve(&mut f, &vec![2.0, 0.0], &ts, &opts, &RmsNorm).expect("the true spiral solves");
    (ts, sol.ys.iter().map(|y| [y[0], y[1]]).collect())
}

/// Training settings (defaults are torchdiffeq's demo).
#[derive(Debug, Clone)]
pub struct SpiralConfig {
    /// Iterations.
    pub iters: usize,
    /// Seed of initialisation and batch sampling.
    pub seed: u64,
    /// Gradient method.
    pub grad: GradMethod,
    /// Windows per batch.
    pub batch_size: usize,
    /// Time points per window.
    pub batch_time: usize,
    /// Learning rate.
    pub lr: f64,
    /// Training-time tolerances.
    pub rtol: f64,
    /// Training-time absolute tolerance.
    pub atol: f64,
    /// Hidden width.
    pub hidden: usize,
    /// Regularisers and their weights `λ`: the objective is `L1 + Σ λ r`, each `r` the penalty's
    /// integral over the window, averaged over the batch ([`nodal_solve::regularise`]).
    pub penalties: Vec<(Penalty, f64)>,
    /// Cap on what one solve stores for its gradients ([`nodal_solve::Limits::max_memory`]).
    pub max_memory: usize,
}

impl SpiralConfig {
    /// Check the settings: tolerances finite, >= 0 and not both 0, a positive learning rate,
    /// batch sizes that fit the trajectory, a hidden width of at least 1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be finite and >= 0 (got {v})"));
            }
            if v > 0.0 && v < f32::MIN_POSITIVE as f64 {
                return Err(format!("{name} {v:e} underflows float32, the type the spiral trains in"));
            }
        }
        if self.rtol == 0.0 && self.atol == 0.0 {
            return Err("rtol and atol cannot both be 0".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("the learning rate must be positive and finite (got {})", self.lr));
        }
        if self.batch_size == 0 || self.batch_time < 2 || self.batch_time >= DATA_SIZE || self.hidden == 0 {
            return Err(format!(
                "batch size {} and window {} must be >= 1 and in 2..{DATA_SIZE}, hidden width >= 1",
                self.batch_size, self.batch_time
            ));
        }
        Ok(())
    }

    /// The settings a checkpoint must share with the run that resumes it (everything but the
    /// number of iterations, which a resumed run may raise).
    pub fn fingerprint(&self) -> serde_json::Value {
        serde_json::json!({
            "seed": self.seed,
            "grad": format!("{:?}", self.grad),
            "batch_size": self.batch_size,
            "batch_time": self.batch_time,
            "lr": self.lr,
            "rtol": self.rtol,
            "atol": self.atol,
            "hidden": self.hidden,
            "penalties": self.penalties.iter().map(|(p, w)| format!("{p:?}={w}")).collect::<Vec<_>>(),
        })
    }
}

/// What a spiral run's `checkpoint.json` holds: enough to continue bit for bit (the batch
/// sampler is replayed from the seed, the probe seeds depend on the iteration only).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SpiralCheckpoint {
    /// [`SpiralConfig::fingerprint`] of the run.
    pub settings: serde_json::Value,
    /// Iterations done.
    pub iter: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Flat parameters after `iter` iterations.
    pub params: Vec<f32>,
    /// The optimiser's state (`None` before the first step).
    pub optimizer: Option<crate::flat_optim::FlatState>,
}

impl Default for SpiralConfig {
    fn default() -> Self {
        Self {
            iters: 2000,
            seed: 0,
            grad: GradMethod::Backprop,
            batch_size: 20,
            batch_time: 10,
            lr: 1e-3,
            rtol: 1e-7,
            atol: 1e-9,
            hidden: 50,
            penalties: Vec::new(),
            max_memory: nodal_solve::DEFAULT_MAX_MEMORY,
        }
    }
}

/// One iteration's record.
#[derive(Debug, Clone)]
pub struct IterRecord {
    /// 1-based iteration.
    pub iter: usize,
    /// Mean absolute error of the batch.
    pub loss: f64,
    /// Wall time of the iteration (forward, backward, update), milliseconds.
    pub ms: f64,
    /// Forward evaluations.
    pub nfe_forward: usize,
    /// Backward evaluations (f evaluations plus VJPs for backprop; augmented evaluations for
    /// the adjoint, each one f and one VJP).
    pub nfe_backward: usize,
    /// Values of the penalties (unweighted integrals over the window), in configuration order.
    pub penalties: Vec<f64>,
}

/// One batch's loss and gradient, before the optimiser step.
#[derive(Debug, Clone)]
pub struct BatchGradient {
    /// Mean absolute error of the batch.
    pub loss: f64,
    /// Gradient of the objective for the flat parameters `[W1, b1, W2, b2]` (PyTorch layout).
    pub grad: Vec<f32>,
    /// Forward evaluations.
    pub nfe_forward: usize,
    /// Backward evaluations (as [`IterRecord::nfe_backward`]).
    pub nfe_backward: usize,
    /// Values of the penalties.
    pub penalties: Vec<f64>,
}

/// The trainer: data, model, optimiser and sampler.
pub struct SpiralTrainer {
    /// Settings.
    pub cfg: SpiralConfig,
    /// Output times of the true trajectory.
    pub ts: Vec<f64>,
    /// True states.
    pub ys: Vec<[f64; 2]>,
    /// The model.
    pub model: CubedMlp,
    pub(crate) opt: FlatOptimizer,
    pub(crate) rng: StdRng,
    pub(crate) iter: usize,
}

impl SpiralTrainer {
    /// Set up data, model and optimiser; the penalties are checked (a Jacobian penalty needs at
    /// least one probe).
    pub fn new(cfg: SpiralConfig) -> Result<Self, RegulariseError> {
        let pens: Vec<Penalty> = cfg.penalties.iter().map(|p| p.0).collect();
        Regularised::new(CubedMlp::init(0, 1), 2, &pens, 0)?;
        let (ts, ys) = true_trajectory();
        let model = CubedMlp::init(cfg.seed, cfg.hidden);
        let opt = FlatOptimizer::rmsprop(model.mlp.params.len(), cfg.lr);
        let rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(0x5eed));
        Ok(Self { cfg, ts, ys, model, opt, rng, iter: 0 })
    }

    pub(crate) fn options(&self) -> SolveOptions {
        SolveOptions::new(&DOPRI5).with_tol(self.cfg.rtol, self.cfg.atol).with_max_steps(100_000).with_max_memory(self.cfg.max_memory)
    }

    /// Iterations done.
    pub fn iter(&self) -> usize {
        self.iter
    }

    /// The state to save.
    pub fn checkpoint(&self) -> SpiralCheckpoint {
        SpiralCheckpoint {
            settings: self.cfg.fingerprint(),
            iter: self.iter,
            hidden: self.cfg.hidden,
            params: self.model.mlp.params.clone(),
            optimizer: self.opt.state(),
        }
    }

    /// Continue from a checkpoint made by a run with the same settings: parameters, optimiser
    /// state, and the sampler advanced past the iterations done.
    pub fn resume_from(&mut self, ck: &SpiralCheckpoint) -> Result<(), String> {
        let want = self.cfg.fingerprint();
        if ck.settings != want {
            let differ: Vec<String> = match (ck.settings.as_object(), want.as_object()) {
                (Some(have), Some(want)) => want
                    .iter()
                    .filter(|(k, v)| have.get(*k) != Some(v))
                    .map(|(k, v)| format!("{k} {} there, {v} here", have.get(k).map_or("absent".to_string(), |h| h.to_string())))
                    .collect(),
                _ => vec![format!("{} there", ck.settings)],
            };
            return Err(format!("made with other settings ({})", differ.join("; ")));
        }
        if self.iter != 0 {
            return Err("resume_from needs a fresh trainer".into());
        }
        if ck.iter > MAX_ITERS {
            return Err(format!("iteration {} is beyond the {MAX_ITERS} a run may have", ck.iter));
        }
        let model = CubedMlp::from_params(ck.hidden, ck.params.clone()).ok_or("the parameters do not fit the model")?;
        if model.mlp.params.iter().any(|x| !x.is_finite()) {
            return Err("the parameters hold a non-finite value".into());
        }
        if let Some(st) = &ck.optimizer {
            self.opt.restore(st)?;
        }
        self.model = model;
        for _ in 0..ck.iter.saturating_mul(self.cfg.batch_size) {
            self.rng.gen_range(0..DATA_SIZE - self.cfg.batch_time);
        }
        self.iter = ck.iter;
        Ok(())
    }

    /// One training iteration.
    pub fn step(&mut self) -> Result<IterRecord, SolveError> {
        let start = std::time::Instant::now();
        let starts = self.sample_starts();
        let b = self.batch_gradient(&starts)?;
        Ok(self.apply(b, start))
    }

    /// The next batch's window starts (advances the sampler).
    pub(crate) fn sample_starts(&mut self) -> Vec<usize> {
        let bt = self.cfg.batch_time;
        (0..self.cfg.batch_size).map(|_| self.rng.gen_range(0..DATA_SIZE - bt)).collect()
    }

    /// Take the optimiser step for `b` and count the iteration.
    pub(crate) fn apply(&mut self, b: BatchGradient, start: std::time::Instant) -> IterRecord {
        self.opt.step(&mut self.model.mlp.params, &b.grad);
        self.iter += 1;
        IterRecord {
            iter: self.iter,
            loss: b.loss,
            ms: start.elapsed().as_secs_f64() * 1e3,
            nfe_forward: b.nfe_forward,
            nfe_backward: b.nfe_backward,
            penalties: b.penalties,
        }
    }

    /// Loss and gradient of the batch of windows starting at `starts`, with the fused host MLP.
    pub fn batch_gradient(&mut self, starts: &[usize]) -> Result<BatchGradient, SolveError> {
        let (bs, bt) = (starts.len(), self.cfg.batch_time);
        let y0: Vec<f32> = starts.iter().flat_map(|&s| self.ys[s].map(|v| v as f32)).collect();
        let t = &self.ts[..bt];
        let opts = self.options();
        let pens: Vec<Penalty> = self.cfg.penalties.iter().map(|p| p.0).collect();
        let probe_seed = self.cfg.seed.wrapping_mul(1_000_003).wrapping_add(self.iter as u64);
        let mut f = Regularised::new(&mut self.model, 2, &pens, probe_seed).map_err(SolveError::Regulariser)?;
        let y0 = f.augment(&y0);
        let m = y0.len();
        let (sol, backward) = solve_for_gradients(&mut f, &y0, t, &opts, &RmsNorm, self.cfg.grad).map_err(|f| f.error)?;
        // L1 loss: mean |pred - true| over times, rows and components.
        let n = (bt * bs * 2) as f32;
        let mut loss = 0.0f64;
        let mut ybar: Vec<Vec<f32>> = (0..bt)
            .map(|k| {
                let mut g: Vec<f32> = (0..bs * 2)
                    .map(|j| {
                        let truth = self.ys[starts[j / 2] + k][j % 2] as f32;
                        let d = sol.ys[k][j] - truth;
                        loss += d.abs() as f64;
                        if d > 0.0 {
                            1.0 / n
                        } else if d < 0.0 {
                            -1.0 / n
                        } else {
                            0.0
                        }
                    })
                    .collect();
                g.resize(m, 0.0);
                g
            })
            .collect();
        loss /= n as f64;
        // The penalties enter the objective through their final values.
        for (i, (_, w)) in self.cfg.penalties.iter().enumerate() {
            ybar[bt - 1][bs * 2 + i] = *w as f32;
        }
        let penalties = f.values(&sol.ys[bt - 1]);
        let g = backward.gradients(&mut f, t, &sol.ys, &ybar, &AdjointOptions { solve: opts.clone(), seminorm: false }, false)?;
        drop(f);
        let nfe_backward = match self.cfg.grad {
            GradMethod::Adjoint => g.stats.nfe,
            _ => g.stats.nfe + g.stats.nvjp,
        };
        Ok(BatchGradient { loss, grad: g.params, nfe_forward: sol.stats.nfe, nfe_backward, penalties })
    }

    /// Solve the learned model from `y(0) = [2, 0]` over the whole trajectory; returns the
    /// states, the mean absolute error against the truth, and the evaluations used.
    pub fn predict(&mut self, rtol: f64, atol: f64) -> Result<(Vec<[f64; 2]>, f64, usize), SolveError> {
        predict(&mut self.model, &self.ts, &self.ys, rtol, atol)
    }
}

/// Solve `model` from `[2, 0]` on `ts` and score it against `truth` (mean absolute error).
pub fn predict(
    model: &mut CubedMlp,
    ts: &[f64],
    truth: &[[f64; 2]],
    rtol: f64,
    atol: f64,
) -> Result<(Vec<[f64; 2]>, f64, usize), SolveError> {
    let opts = SolveOptions::new(&DOPRI5).with_tol(rtol, atol).with_max_steps(1_000_000);
    predict_with(model, ts, truth, &opts)
}

/// [`predict`] with any solver options.
pub fn predict_with(
    model: &mut CubedMlp,
    ts: &[f64],
    truth: &[[f64; 2]],
    opts: &SolveOptions,
) -> Result<(Vec<[f64; 2]>, f64, usize), SolveError> {
    let sol = solve(model, &vec![2.0f32, 0.0], ts, opts, &RmsNorm).map_err(|f| f.error)?;
    let pred: Vec<[f64; 2]> = sol.ys.iter().map(|y| [y[0] as f64, y[1] as f64]).collect();
    let err = pred.iter().zip(truth).map(|(p, t)| (p[0] - t[0]).abs() + (p[1] - t[1]).abs()).sum::<f64>() / (2 * ts.len()) as f64;
    Ok((pred, err, sol.stats.nfe))
}

/// Names and shapes of the spiral model's tensors in its safetensors file (PyTorch's names for
/// `Sequential(Linear, Tanh, Linear)`).
pub fn tensor_layout(hidden: usize) -> Vec<(&'static str, Vec<usize>)> {
    vec![("net.0.weight", vec![hidden, 2]), ("net.0.bias", vec![hidden]), ("net.2.weight", vec![2, hidden]), ("net.2.bias", vec![2])]
}

impl CubedMlp {
    /// Save the weights as safetensors (atomically).
    pub fn save(&self, path: &std::path::Path) -> Result<(), nodal::io::FileError> {
        let h = self.mlp.hidden();
        let p = &self.mlp.params;
        let (o1, o2, o3) = (2 * h, 3 * h, 5 * h);
        let layout = tensor_layout(h);
        let parts: [&[f32]; 4] = [&p[..o1], &p[o1..o2], &p[o2..o3], &p[o3..]];
        let tensors: Vec<(&str, Vec<usize>, &[f32])> = layout.into_iter().zip(parts).map(|((n, s), v)| (n, s, v)).collect();
        nodal::io::save_f32_tensors(path, &tensors)
    }

    /// Load weights saved by [`CubedMlp::save`]; the hidden width is read from the file.
    pub fn load(path: &std::path::Path) -> Result<Self, nodal::io::FileError> {
        use nodal::io::FileError;
        let fmt = |reason: String| FileError::Format { path: path.to_path_buf(), reason };
        let bytes = nodal::io::read_capped(path, nodal::io::MAX_WEIGHTS_BYTES, "a weights file")?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let bias =
            st.tensor("net.0.bias").map_err(|_| fmt("no tensor `net.0.bias` (the hidden layer's bias): not spiral weights".into()))?;
        let hidden = match bias.shape() {
            [h] if (1..=1 << 16).contains(h) => *h,
            s => return Err(fmt(format!("tensor `net.0.bias` has shape {s:?}, expected [hidden] with 1 <= hidden <= 65536"))),
        };
        let parts = nodal::io::parse_f32_tensors(&bytes, path, &tensor_layout(hidden))?;
        Self::from_params(hidden, parts.concat()).ok_or_else(|| fmt("tensor sizes do not make an MLP".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo learns: the median training loss over iterations 901-1000 is at most 0.01
    /// (torchdiffeq reaches 0.0025-0.005 there with the same settings).
    #[test]
    fn spiral_training_reaches_the_target_loss() {
        let mut tr = SpiralTrainer::new(SpiralConfig { iters: 1000, ..SpiralConfig::default() }).unwrap();
        let mut losses: Vec<f64> = (0..1000).map(|_| tr.step().expect("training solve").loss).collect();
        let block = &mut losses[900..1000];
        block.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = block[50];
        assert!(median <= 0.01, "median train loss {median}");
    }

    /// A strong kinetic-energy penalty makes the learned dynamics cheaper to solve: fewer
    /// evaluations for the whole trajectory at the same test tolerance (Finlay et al. 2020). At
    /// weight 1 the penalty dominates the L1 loss (about 0.003 here), so the effect is large
    /// (2000 iterations gave 338 vs 2642 evaluations at rtol 1e-7); half is a safe margin.
    #[test]
    fn kinetic_penalty_reduces_test_evaluations() {
        let test_nfe = |penalties: Vec<(Penalty, f64)>| {
            let mut tr = SpiralTrainer::new(SpiralConfig { iters: 400, penalties, ..SpiralConfig::default() }).unwrap();
            let mut last = Vec::new();
            for _ in 0..400 {
                last = tr.step().expect("training solve").penalties;
            }
            (tr.predict(1e-5, 1e-7).expect("test solve").2, last)
        };
        let (plain, none) = test_nfe(vec![]);
        let (reg, vals) = test_nfe(vec![(Penalty::Kinetic, 1.0)]);
        assert!(none.is_empty() && vals.len() == 1 && vals[0] > 0.0);
        assert!((reg as f64) < 0.5 * plain as f64, "regularised {reg} vs plain {plain} evaluations");
    }

    /// The cube's chain rule in the forward-mode products, against central differences (f32,
    /// step 1e-2: truncation ~1e-4 relative, rounding ~1e-5; tolerance 2e-3).
    #[test]
    fn cubed_jvp_and_its_reverse_match_central_differences() {
        let mut m = CubedMlp::init(4, 16);
        m.mlp.params.iter_mut().for_each(|p| *p *= 5.0);
        let y = vec![0.7f32, -1.1, 1.3, 0.4];
        let v = vec![0.3f32, 0.8, -0.5, 1.0];
        let c = vec![1.0f32, -0.4, 0.6, 0.9];
        let (mut f, mut jv) = (vec![0.0; 4], vec![0.0; 4]);
        m.eval_and_jvp(0.0, &y, &v, &mut f, &mut jv);
        let h = 1e-2f32;
        let at = |m: &mut CubedMlp, y: &Vec<f32>| {
            let mut out = vec![0.0; 4];
            m.eval(0.0, y, &mut out);
            out
        };
        let yp: Vec<f32> = y.iter().zip(&v).map(|(a, b)| a + h * b).collect();
        let ym: Vec<f32> = y.iter().zip(&v).map(|(a, b)| a - h * b).collect();
        let (fp, fm) = (at(&mut m, &yp), at(&mut m, &ym));
        let scale = jv.iter().fold(0.0f32, |a, b| a.max(b.abs()));
        for i in 0..4 {
            let fd = (fp[i] - fm[i]) / (2.0 * h);
            assert!((fd - jv[i]).abs() < 2e-3 * scale, "J v [{i}]: fd {fd} vs {}", jv[i]);
        }
        let (mut ay, mut av, mut ap) = (vec![0.0; 4], vec![0.0; 4], m.param_zeros());
        m.jvp_vjp(0.0, &y, &v, &c, &mut ay, &mut av, &mut ap);
        let phi = |m: &mut CubedMlp, y: &Vec<f32>| {
            let (mut f, mut jv) = (vec![0.0; 4], vec![0.0; 4]);
            m.eval_and_jvp(0.0, y, &v, &mut f, &mut jv);
            jv.iter().zip(&c).map(|(a, b)| a * b).sum::<f32>()
        };
        let scale = ay.iter().fold(0.0f32, |a, b| a.max(b.abs()));
        for i in 0..4 {
            let (mut yp, mut ym) = (y.clone(), y.clone());
            yp[i] += h;
            ym[i] -= h;
            let fd = (phi(&mut m, &yp) - phi(&mut m, &ym)) / (2.0 * h);
            assert!((fd - ay[i]).abs() < 2e-3 * scale, "adj_y[{i}]: fd {fd} vs {}", ay[i]);
        }
        let (mut vy, mut vp) = (vec![0.0; 4], m.param_zeros());
        m.vjp(0.0, &y, &c, &mut vy, &mut vp);
        assert!(av.iter().zip(&vy).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs())), "adj_v = J^T c");
        // Parameter adjoints: of c . J v (the second-order product) and of c . f (the plain VJP),
        // against central differences in every 5th parameter.
        let c_dot_f = |m: &mut CubedMlp| at(m, &y).iter().zip(&c).map(|(a, b)| a * b).sum::<f32>();
        let (scale_ap, scale_vp) = (ap.iter().fold(0.0f32, |a, b| a.max(b.abs())), vp.iter().fold(0.0f32, |a, b| a.max(b.abs())));
        for k in (0..ap.len()).step_by(5) {
            let p0 = m.mlp.params[k];
            m.mlp.params[k] = p0 + h;
            let (phi_p, cf_p) = (phi(&mut m, &y), c_dot_f(&mut m));
            m.mlp.params[k] = p0 - h;
            let (phi_m, cf_m) = (phi(&mut m, &y), c_dot_f(&mut m));
            m.mlp.params[k] = p0;
            let (fd_ap, fd_vp) = ((phi_p - phi_m) / (2.0 * h), (cf_p - cf_m) / (2.0 * h));
            assert!((fd_ap - ap[k]).abs() < 2e-3 * scale_ap, "adj_p[{k}]: fd {fd_ap} vs {}", ap[k]);
            assert!((fd_vp - vp[k]).abs() < 2e-3 * scale_vp, "vjp_p[{k}]: fd {fd_vp} vs {}", vp[k]);
        }
        // The value returned beside the JVP is f itself (to rounding: the fused pass orders its
        // sums differently).
        let plain = at(&mut m, &y);
        assert!(f.iter().zip(&plain).all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs())), "f {f:?} vs {plain:?}");
    }

    #[test]
    fn zero_probe_jacobian_penalty_is_a_typed_error() {
        let cfg = SpiralConfig { penalties: vec![(Penalty::JacobianFrobenius { probes: 0 }, 1.0)], ..SpiralConfig::default() };
        assert_eq!(SpiralTrainer::new(cfg).err(), Some(RegulariseError::NoProbes));
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let m = CubedMlp::init(3, 50);
        let dir = std::env::temp_dir().join(format!("nodal-spiral-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        m.save(&path).unwrap();
        let back = CubedMlp::load(&path).unwrap();
        assert_eq!(back.mlp.params, m.mlp.params);
        std::fs::write(&path, b"not a safetensors file").unwrap();
        assert!(CubedMlp::load(&path).unwrap_err().to_string().contains("m.safetensors"));
    }

    /// A checkpoint resumes to the same parameters as uninterrupted training; checkpoints that
    /// do not fit (other settings, wrong lengths, non-finite values, an absurd iteration) are
    /// refused without touching the trainer.
    #[test]
    fn checkpoints_resume_exactly_and_bad_ones_are_refused() {
        let cfg = SpiralConfig { iters: 20, ..SpiralConfig::default() };
        let mut a = SpiralTrainer::new(cfg.clone()).unwrap();
        for _ in 0..7 {
            a.step().unwrap();
        }
        let ck = a.checkpoint();
        let mut b = SpiralTrainer::new(cfg.clone()).unwrap();
        b.resume_from(&serde_json::from_str(&serde_json::to_string(&ck).unwrap()).unwrap()).unwrap();
        for _ in 0..5 {
            a.step().unwrap();
            b.step().unwrap();
        }
        assert_eq!(a.model.mlp.params, b.model.mlp.params);
        let fresh = SpiralTrainer::new(cfg.clone()).unwrap().model.mlp.params;
        let bad: Vec<(SpiralCheckpoint, &str)> = vec![
            (SpiralCheckpoint { settings: SpiralConfig { seed: 9, ..cfg.clone() }.fingerprint(), ..ck.clone() }, "seed 9 there, 0 here"),
            (SpiralCheckpoint { params: vec![0.0; 3], ..ck.clone() }, "do not fit"),
            (SpiralCheckpoint { params: vec![f32::NAN; ck.params.len()], ..ck.clone() }, "non-finite"),
            (SpiralCheckpoint { iter: usize::MAX, ..ck.clone() }, "beyond"),
            (
                SpiralCheckpoint {
                    optimizer: ck.optimizer.clone().map(|mut o| {
                        o.vectors[0][0] = f64::INFINITY;
                        o
                    }),
                    ..ck.clone()
                },
                "non-finite",
            ),
        ];
        for (c, needle) in bad {
            let mut t = SpiralTrainer::new(cfg.clone()).unwrap();
            let e = t.resume_from(&c).unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert_eq!(t.model.mlp.params, fresh, "a refused checkpoint changed the trainer");
            assert_eq!(t.iter(), 0);
        }
    }
}
