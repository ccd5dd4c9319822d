//! Continuous normalising flows on the 2-D toy densities (FFJORD, Grathwohl et al. 2019; RNODE,
//! Finlay et al. 2020), with the shared anchor's setup: `f(t, z) = MLP([z, t])`, widths
//! 3 -> 64 -> 64 -> 64 -> 2, tanh; `z` from data at `t = 0` to `N(0, I)` at `t = 1`; dopri5 at
//! `rtol = atol = 1e-5` with the error norm `max(RMS(z), RMS(Δ))` (penalties outside step
//! control); f32; Adam, lr 1e-3; batches of 512 fresh samples; test NLL on 10,000 held-out
//! samples with the exact trace.
//!
//! Two engines run the same model and parameters: the fused network
//! ([`nodal::solve::cnf_mlp::CnfMlp`], hand-written second-order reverse pass) and a burn
//! module built from [`nodal::jvp`] layers inside [`nodal::cnf::Cnf`] (burn's reverse mode
//! through the JVPs), so users see what each costs.

pub mod data;
pub mod images;
pub mod model;

pub use data::Toy;
pub use model::{TOY_WIDTHS, ToyField, init_params};

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::cnf::{Cnf, CnfSettings, Trace, probe_vectors};
use nodal::neural_ode::OdeSettings;
use nodal::solve::cnf_mlp::{CnfMlp, CnfMode};
use nodal::solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal::solve::tableau::DOPRI5;
use nodal::solve::{ColumnGroupsNorm, NormChoice, RmsNorm, SolveError, SolveOptions};
use nodal_distributed::{Communicator, SingleProcess, shard_range};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;

/// Which implementation evaluates the dynamics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The fused network with its hand-written reverse pass.
    Fused,
    /// A burn module with JVP layers, burn's autodiff for every reverse pass.
    Module,
}

impl Engine {
    /// Parse `fused` or `module`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fused" => Some(Self::Fused),
            "module" | "burn" => Some(Self::Module),
            _ => None,
        }
    }
    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fused => "fused",
            Self::Module => "module",
        }
    }
}

/// One training run's settings (the anchor's defaults).
#[derive(Debug, Clone)]
pub struct CnfConfig {
    /// The toy density.
    pub data: Toy,
    /// Trace during training (evaluation always uses the exact trace).
    pub trace: Trace,
    /// Weight of the kinetic penalty `∫‖f‖²` (0: off).
    pub kinetic: f64,
    /// Weight of the Jacobian Frobenius penalty `∫‖∂f/∂z‖_F²` (0: off).
    pub jacobian: f64,
    /// Keep the penalties in the error norm (default off, RNODE practice).
    pub penalties_in_norm: bool,
    /// Iterations.
    pub iters: usize,
    /// Seed of the initial weights, the batches (and `seed + 1000` the test set).
    pub seed: u64,
    /// Batch size.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// `rtol = atol` of every solve.
    pub tol: f64,
    /// Gradient method.
    pub grad: GradMethod,
    /// Implementation.
    pub engine: Engine,
    /// Held-out samples.
    pub n_test: usize,
    /// Where the module engine's tensors live (without autodiff; training adds it): burn's flex
    /// CPU backend by default, or any device of [`nodal::backend::Backend`]. The fused engine
    /// always runs on the CPU.
    pub device: Device,
}

impl CnfConfig {
    /// The anchor's setup on `data`.
    pub fn new(data: Toy) -> Self {
        Self {
            data,
            trace: Trace::Exact,
            kinetic: 0.0,
            jacobian: 0.0,
            penalties_in_norm: false,
            iters: 1000,
            seed: 0,
            batch: 512,
            lr: 1e-3,
            tol: 1e-5,
            grad: GradMethod::Backprop,
            engine: Engine::Fused,
            n_test: 10_000,
            device: Device::flex(),
        }
    }
    fn regularised(&self) -> bool {
        self.kinetic > 0.0 || self.jacobian > 0.0
    }
    fn cnf_settings(&self) -> CnfSettings {
        CnfSettings {
            trace: self.trace,
            kinetic: self.regularised(),
            jacobian: self.regularised(),
            penalties_in_error_control: self.penalties_in_norm,
            t1: 1.0,
        }
    }
    fn solve_options(&self) -> SolveOptions {
        SolveOptions::new(&DOPRI5).with_tol(self.tol, self.tol)
    }
}

/// One iteration's record (a line of metrics.jsonl).
#[derive(Debug, Clone, serde::Serialize)]
pub struct IterRecord {
    /// 1-based iteration.
    pub iter: usize,
    /// Objective (NLL plus weighted penalties).
    pub loss: f64,
    /// Training-batch NLL (nats), with the training trace.
    pub nll: f64,
    /// Batch mean of `∫‖f‖²` (when regularised).
    pub kinetic: Option<f64>,
    /// Batch mean of `∫‖∂f/∂z‖_F²` (when regularised).
    pub jacobian: Option<f64>,
    /// Wall time of the step (solve, backward, update), ms.
    pub ms: f64,
    /// Forward evaluations.
    pub nfe_forward: usize,
    /// Backward evaluations (VJPs and re-evaluations).
    pub nfe_backward: usize,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum CnfRunError {
    /// A solve failed.
    #[error("{0}")]
    Solve(#[from] SolveError),
    /// The flow refused its dynamics or input.
    #[error("{0}")]
    Flow(#[from] nodal::cnf::CnfError),
    /// Data-parallel training: a collective failed, the ranks disagree, or another rank failed.
    #[error("distributed training: {0}")]
    Distributed(#[from] nodal_distributed::CommError),
    /// The loss or the gradient stopped being finite.
    #[error("training diverged at iteration {iter}: {what}")]
    Diverged {
        /// Iteration.
        iter: usize,
        /// What was not finite.
        what: String,
    },
}

#[allow(clippy::large_enum_variant)]
enum State {
    Fused { net: Box<CnfMlp<f32>>, opt: crate::flat_optim::FlatOptimizer },
    Module { cnf: Cnf<ToyField>, opt: ModuleOptimizer, device: Device },
}

/// A training run. See the module docs.
pub struct CnfTrainer {
    /// Settings.
    pub cfg: CnfConfig,
    state: State,
    rng: StdRng,
    iter: usize,
    comm: Arc<dyn Communicator>,
}

const LOG_2PI: f64 = 1.8378770664093453;

impl CnfTrainer {
    /// A run from seeded initial weights (PyTorch's default initialisation).
    pub fn new(cfg: CnfConfig) -> Self {
        let params = init_params(&TOY_WIDTHS, cfg.seed);
        Self::with_params(cfg, params)
    }

    /// A run from given flat parameters (PyTorch layout).
    pub fn with_params(cfg: CnfConfig, params: Vec<f32>) -> Self {
        let state = match cfg.engine {
            Engine::Fused => {
                let n = params.len();
                let net = CnfMlp::new(&TOY_WIDTHS, params, CnfMode::Plain).expect("the toy widths and their parameter count");
                State::Fused { net: Box::new(net), opt: crate::flat_optim::FlatOptimizer::adam(n, cfg.lr) }
            }
            Engine::Module => {
                let device = cfg.device.clone().autodiff();
                let func = ToyField::from_flat(&TOY_WIDTHS, &params, &device);
                let s = OdeSettings::new(cfg.solve_options()).with_grad(cfg.grad);
                let cnf = Cnf::new(func, cfg.cnf_settings(), s.clone(), s);
                State::Module { cnf, opt: AdamConfig::new().with_epsilon(1e-8).init(), device }
            }
        };
        let rng = StdRng::seed_from_u64(cfg.seed);
        Self { cfg, state, rng, iter: 0, comm: Arc::new(SingleProcess) }
    }

    /// Data-parallel training: this trainer is rank `comm.rank()` of `comm.size()`. Every rank
    /// draws the same global batch (same seed), solves and differentiates its
    /// [`shard_range`] of the rows with the loss divided by the global batch, and one
    /// all-reduce sums the gradients and the loss terms before every rank takes the same Adam
    /// step. The fused engine only. The ranks check that they share the settings and the
    /// initial weights. Each shard is one adaptive solve, whose steps come from its own rows'
    /// error norm, so the update equals the single process's up to the solver tolerance (not
    /// to round-off, as for fixed-step models).
    pub fn with_communicator(mut self, comm: Arc<dyn Communicator>) -> Result<Self, CnfRunError> {
        if comm.size() > 1 {
            if !matches!(self.state, State::Fused { .. }) {
                return Err(CnfRunError::Distributed(nodal_distributed::CommError::Mismatch(
                    "distributed CNF training runs the fused engine (--engine fused)".into(),
                )));
            }
            let c = comm.as_ref();
            c.check_same("the batch", self.cfg.batch as f64)?;
            c.check_same("the seed", self.cfg.seed as f64)?;
            c.check_same("the learning rate", self.cfg.lr)?;
            c.check_same("the tolerance", self.cfg.tol)?;
            c.check_same("the iterations", self.cfg.iters as f64)?;
            let sum: f64 = self.params().iter().map(|&x| x as f64).sum();
            c.check_same("the sum of the initial weights", sum)?;
        }
        self.comm = comm;
        Ok(self)
    }

    /// This run's communicator.
    pub fn comm(&self) -> &dyn Communicator {
        self.comm.as_ref()
    }

    /// Iterations done.
    pub fn iter(&self) -> usize {
        self.iter
    }

    /// Current flat parameters (PyTorch layout).
    pub fn params(&self) -> Vec<f32> {
        match &self.state {
            State::Fused { net, .. } => net.params.clone(),
            State::Module { cnf, .. } => cnf.func.to_flat(),
        }
    }

    /// One training iteration on a fresh batch.
    pub fn step(&mut self) -> Result<IterRecord, CnfRunError> {
        let batch_seed = self.rng.r#gen::<u64>();
        let x = self.cfg.data.sample(self.cfg.batch, batch_seed);
        let probe_seed = self.rng.r#gen::<u64>();
        self.iter += 1;
        let it = self.iter;
        let start = Instant::now();
        let rec = match &mut self.state {
            State::Fused { net, opt } => fused_step(&self.cfg, net, opt, &x, probe_seed, self.comm.as_ref())?,
            State::Module { cnf, opt, device } => {
                let b = self.cfg.batch;
                let xt = Tensor::<2>::from_data(
                    TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [b, 2]),
                    (&*device, DType::F32),
                );
                let out = cnf.log_prob(xt, probe_seed)?;
                let nll = out.log_prob.mean().neg();
                let (mut loss, mut kin, mut jac) = (nll.clone(), None, None);
                if let Some(p) = out.penalties {
                    let pv: Vec<f32> = p.clone().into_data().convert::<f32>().try_into_vec().unwrap_or_default();
                    kin = pv.first().map(|v| *v as f64);
                    jac = pv.get(1).map(|v| *v as f64);
                    let w = Tensor::<1>::from_data(
                        TensorData::new(vec![self.cfg.kinetic as f32, self.cfg.jacobian as f32], [2]),
                        (&*device, DType::F32),
                    );
                    loss = loss + (p * w).sum();
                }
                let lv = scalar(&loss);
                let grads = loss.backward();
                let nfe_backward = match out.backward.lock().ok().and_then(|g| g.clone()) {
                    Some(Ok(s)) => s.nfe + s.nvjp,
                    Some(Err(e)) => return Err(e.into()),
                    None => 0,
                };
                let gp = GradientsParams::from_grads(grads, &*cnf);
                let m = std::mem::replace(cnf, cnf.clone());
                *cnf = opt.step(self.cfg.lr, m, gp);
                IterRecord {
                    iter: it,
                    loss: lv,
                    nll: scalar(&nll),
                    kinetic: kin,
                    jacobian: jac,
                    ms: 0.0,
                    nfe_forward: out.stats.nfe,
                    nfe_backward,
                }
            }
        };
        let mut rec = IterRecord { iter: it, ms: start.elapsed().as_secs_f64() * 1e3, ..rec };
        rec.iter = it;
        if !rec.loss.is_finite() {
            return Err(CnfRunError::Diverged { iter: it, what: format!("loss {}", rec.loss) });
        }
        if !self.params().iter().all(|v| v.is_finite()) {
            return Err(CnfRunError::Diverged { iter: it, what: "a parameter".into() });
        }
        Ok(rec)
    }

    /// `log p(x)` per row of `x` (`[n][2]`) with the exact trace, and the forward evaluations of
    /// the solve (one solve over all rows).
    pub fn log_prob(&self, x: &[f64]) -> Result<(Vec<f64>, usize), CnfRunError> {
        log_prob(&self.cfg, &self.params(), x)
    }

    /// `n` samples: `z ~ N(0, I)` (seeded) solved from `t = 1` back to 0.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<f64>, CnfRunError> {
        sample(&self.cfg, &self.params(), n, seed)
    }
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_data().convert::<f64>().try_into_vec::<f64>().ok().and_then(|v| v.first().copied()).unwrap_or(f64::NAN)
}

/// The fused engine's training step: on rank `r` of `N`, rows [`shard_range`] of the global
/// batch `x`, with the loss divided by the global batch size; the gradients and loss terms are
/// then summed over ranks (nothing is sent for one rank).
fn fused_step(
    cfg: &CnfConfig,
    net: &mut CnfMlp<f32>,
    opt: &mut crate::flat_optim::FlatOptimizer,
    x: &[f64],
    probe_seed: u64,
    comm: &dyn Communicator,
) -> Result<IterRecord, CnfRunError> {
    let reg = cfg.regularised();
    let b = cfg.batch;
    let rows = shard_range(b, comm.rank(), comm.size());
    let local = fused_gradient(cfg, net, x, probe_seed, rows.clone());
    let (mut grad, mut sums) = match &local {
        Ok((g, s)) => (g.clone(), s.to_vec()),
        Err(_) => (vec![0.0f32; net.params.len()], vec![0.0; 5]),
    };
    if comm.size() > 1 {
        if let Err(e) = comm.agree(local.as_ref().map(|_| ()).map_err(|e| e.to_string())) {
            return Err(match local {
                Err(own) => own,
                Ok(_) => CnfRunError::Distributed(e),
            });
        }
        comm.all_reduce_sum_f32(&mut grad)?;
        comm.all_reduce_sum_f64(&mut sums)?;
        // Evaluation counts: the mean over ranks.
        sums[3] /= comm.size() as f64;
        sums[4] /= comm.size() as f64;
    } else if let Err(e) = local {
        return Err(e);
    }
    let bf = b as f64;
    let (nll, kin, jac) = (sums[0] / bf, sums[1] / bf, sums[2] / bf);
    let loss = nll + cfg.kinetic * kin + cfg.jacobian * jac;
    let mut params = std::mem::take(&mut net.params);
    opt.step(&mut params, &grad);
    net.params = params;
    Ok(IterRecord {
        iter: 0,
        loss,
        nll,
        kinetic: reg.then_some(kin),
        jacobian: reg.then_some(jac),
        ms: 0.0,
        nfe_forward: sums[3].round() as usize,
        nfe_backward: sums[4].round() as usize,
    })
}

/// The gradient of `(sum over rows of the loss) / batch` over the rows `rows` of the global
/// batch `x`, and `[sum nll, sum kinetic, sum jacobian, forward NFE, backward NFE]`.
fn fused_gradient(
    cfg: &CnfConfig,
    net: &mut CnfMlp<f32>,
    x: &[f64],
    probe_seed: u64,
    rows: std::ops::Range<usize>,
) -> Result<(Vec<f32>, [f64; 5]), CnfRunError> {
    let reg = cfg.regularised();
    let n = rows.len();
    if n == 0 {
        return Ok((vec![0.0; net.params.len()], [0.0; 5]));
    }
    net.set_mode(CnfMode::Augmented { kinetic: reg, jacobian: reg });
    match cfg.trace {
        Trace::Exact => net.use_exact_trace(),
        Trace::Hutchinson { probes, distribution } => {
            // The module engine's probes for the same seed (nodal::cnf::probe_vectors), laid out
            // [probe][row][2] over the global batch: this shard takes its rows of each probe.
            let all = probe_vectors(probes, distribution, cfg.batch, 2, probe_seed);
            let p = (0..probes)
                .flat_map(|k| all[(k * cfg.batch + rows.start) * 2..(k * cfg.batch + rows.end) * 2].iter().map(|&v| v as f32))
                .collect();
            net.use_probes(probes, p);
        }
    }
    let w = net.row_width();
    let mut y0 = vec![0.0f32; n * w];
    for (r, g) in rows.clone().enumerate() {
        y0[r * w] = x[2 * g] as f32;
        y0[r * w + 1] = x[2 * g + 1] as f32;
    }
    let norm = cfg.cnf_settings().norm(2);
    let opts = cfg.solve_options();
    let ts = [0.0, 1.0];
    let (sol, backward) = solve_for_gradients(net, &y0, &ts, &opts, &norm, cfg.grad).map_err(|f| f.error)?;
    let y1 = &sol.ys[1];
    let bf = cfg.batch as f64;
    let (mut nll, mut kin, mut jac) = (0.0, 0.0, 0.0);
    let mut ybar = vec![0.0f32; n * w];
    for r in 0..n {
        let row = &y1[r * w..(r + 1) * w];
        let (z0, z1, delta) = (row[0] as f64, row[1] as f64, row[2] as f64);
        nll -= -0.5 * (z0 * z0 + z1 * z1) - LOG_2PI - delta;
        ybar[r * w] = (z0 / bf) as f32;
        ybar[r * w + 1] = (z1 / bf) as f32;
        ybar[r * w + 2] = (1.0 / bf) as f32;
        if reg {
            kin += row[3] as f64;
            jac += row[4] as f64;
            ybar[r * w + 3] = (cfg.kinetic / bf) as f32;
            ybar[r * w + 4] = (cfg.jacobian / bf) as f32;
        }
    }
    let zero = vec![0.0f32; n * w];
    let adj = AdjointOptions { solve: opts.clone(), seminorm: false };
    let g = backward.gradients(net, &ts, &sol.ys, &[zero, ybar], &adj, false)?;
    Ok((g.params, [nll, kin, jac, sol.stats.nfe as f64, (g.stats.nfe + g.stats.nvjp) as f64]))
}

/// `log p(x)` per row with the exact trace (evaluation; either engine's parameters).
pub fn log_prob(cfg: &CnfConfig, params: &[f32], x: &[f64]) -> Result<(Vec<f64>, usize), CnfRunError> {
    let n = x.len() / 2;
    match cfg.engine {
        Engine::Fused => {
            let mut net =
                CnfMlp::new(&TOY_WIDTHS, params.to_vec(), CnfMode::Augmented { kinetic: false, jacobian: false }).expect("toy widths");
            net.use_exact_trace();
            net.set_cache_bytes(0);
            let mut y0 = vec![0.0f32; n * 3];
            for r in 0..n {
                y0[r * 3] = x[2 * r] as f32;
                y0[r * 3 + 1] = x[2 * r + 1] as f32;
            }
            let norm = NormChoice::Columns(ColumnGroupsNorm::new(3, &[(0, 2), (2, 3)]));
            let (sol, _) =
                solve_for_gradients(&mut net, &y0, &[0.0, 1.0], &cfg.solve_options(), &norm, GradMethod::Adjoint).map_err(|f| f.error)?;
            let y1 = &sol.ys[1];
            let lp = (0..n)
                .map(|r| {
                    let (a, b, d) = (y1[r * 3] as f64, y1[r * 3 + 1] as f64, y1[r * 3 + 2] as f64);
                    -0.5 * (a * a + b * b) - LOG_2PI - d
                })
                .collect();
            Ok((lp, sol.stats.nfe))
        }
        Engine::Module => {
            let device = cfg.device.clone();
            let func = ToyField::from_flat(&TOY_WIDTHS, params, &device);
            let s = OdeSettings::new(cfg.solve_options());
            let cnf = Cnf::new(func, CnfSettings::default(), s.clone(), s);
            let xt =
                Tensor::<2>::from_data(TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [n, 2]), (&device, DType::F32));
            let out = cnf.log_prob(xt, 0)?;
            Ok((out.log_prob.into_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default(), out.stats.nfe))
        }
    }
}

/// `n` samples of the flow with `params` (seeded base draws; the plain flow backwards).
pub fn sample(cfg: &CnfConfig, params: &[f32], n: usize, seed: u64) -> Result<Vec<f64>, CnfRunError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let z: Vec<f32> = (0..2 * n).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal) as f32).collect();
    let mut net = CnfMlp::new(&TOY_WIDTHS, params.to_vec(), CnfMode::Plain).expect("toy widths");
    net.set_cache_bytes(0);
    let (sol, _) =
        solve_for_gradients(&mut net, &z, &[1.0, 0.0], &cfg.solve_options(), &RmsNorm, GradMethod::Adjoint).map_err(|f| f.error)?;
    Ok(sol.ys[1].iter().map(|&v| v as f64).collect())
}

#[cfg(test)]
mod tests;
