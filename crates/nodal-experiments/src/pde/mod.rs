//! PDE layers trained on simulated data (method of lines, stiff solver, exact gradients through
//! its implicit steps):
//!
//! - `reaction-diffusion`: Fisher-KPP `u_t = D u_xx + r u (1 - u)` (D = 0.01, r = 3, 64 cells
//!   on `[0, 1]`, Neumann); the model keeps the diffusion and learns the reaction as a pointwise
//!   network `R_theta(u)` (1-16-16-1, tanh) from snapshots of 8 fields over `[0, T]`.
//! - `burgers`: viscous Burgers (nu = 0.05) simulated on 512 points and observed on 32; the
//!   model is the 32-point discretisation with a learned convection stencil over `[u, u^2]`
//!   (10 weights, started at the central scheme): a closure for the coarse grid's error.
//!
//! Both are trained by Adam (400 iterations from 1e-2 decaying by 0.998 per iteration, and 300
//! from 5e-3 decaying by 0.99) on the mean squared error of the snapshots, with gradients by
//! backpropagation through Kvaerno5 steps ([`nodal::solve::grad::backprop_implicit_tape`]), and
//! evaluated on held-out initial fields up to twice the training horizon against the true PDE.

pub mod data;

use crate::flat_optim::FlatOptimizer;
use data::Trajectories;
use nodal::solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal::solve::pde::{Axis, Boundary, Burgers, Convection, Grid, PointwiseMlp, Reaction, ReactionDiffusion};
use nodal::solve::tableau::DOPRI5;
use nodal::solve::{Dynamics, ImplicitMethod, RmsNorm, SolveError, SolveOptions, VjpDynamics, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Which PDE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdeSystem {
    /// Fisher-KPP with a learned reaction.
    ReactionDiffusion,
    /// Viscous Burgers with a learned convection stencil on a coarse grid.
    Burgers,
}

impl PdeSystem {
    /// Parse `reaction-diffusion` or `burgers`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reaction-diffusion" => Some(Self::ReactionDiffusion),
            "burgers" => Some(Self::Burgers),
            _ => None,
        }
    }
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ReactionDiffusion => "reaction-diffusion",
            Self::Burgers => "burgers",
        }
    }
}

/// Settings of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PdeConfig {
    /// The system.
    pub system: PdeSystem,
    /// Adam iterations.
    pub iters: usize,
    /// Adam learning rate at the first iteration.
    pub lr: f64,
    /// Factor on the learning rate after each iteration.
    pub lr_decay: f64,
    /// Seed of data and initialisation.
    pub seed: u64,
    /// Training initial fields.
    pub train_fields: usize,
    /// Held-out initial fields.
    pub test_fields: usize,
    /// Training horizon `T` (evaluation runs to `2 T`).
    pub horizon: f64,
    /// Snapshots over `(0, T]`.
    pub snapshots: usize,
    /// Relative tolerance of the training solves.
    pub rtol: f64,
}

impl PdeConfig {
    /// The defaults of `system` (see the module docs).
    pub fn new(system: PdeSystem) -> Self {
        match system {
            PdeSystem::ReactionDiffusion => Self {
                system,
                iters: 400,
                lr: 1e-2,
                lr_decay: 0.998,
                seed: 0,
                train_fields: 8,
                test_fields: 8,
                horizon: 2.0,
                snapshots: 10,
                rtol: 1e-6,
            },
            PdeSystem::Burgers => Self {
                system,
                iters: 300,
                lr: 5e-3,
                lr_decay: 0.99,
                seed: 0,
                train_fields: 8,
                test_fields: 8,
                horizon: 1.0,
                snapshots: 10,
                rtol: 1e-6,
            },
        }
    }
}

/// Constants of the systems.
pub const RD_CELLS: usize = 64;
/// Diffusion coefficient of the reaction-diffusion system.
pub const RD_DIFFUSION: f64 = 0.01;
/// Fisher-KPP growth rate.
pub const RD_RATE: f64 = 3.0;
/// Hidden width of the learned reaction.
pub const RD_HIDDEN: usize = 16;
/// Burgers viscosity: low enough that the coarse grid's cell Reynolds number `|u| dx / nu`
/// reaches 2-3, where the central scheme's error is large.
pub const BURGERS_NU: f64 = 0.05;
/// Fine grid of the Burgers data.
pub const BURGERS_FINE: usize = 512;
/// Coarse grid of the Burgers model.
pub const BURGERS_COARSE: usize = 32;

/// A learned PDE layer (either system) as one dynamics type.
#[derive(Debug, Clone)]
pub enum PdeLayer {
    /// Reaction-diffusion.
    ReactionDiffusion(ReactionDiffusion),
    /// Burgers.
    Burgers(Burgers),
}

impl PdeLayer {
    /// The learned layer of `system` with parameters `params`.
    pub fn learned(system: PdeSystem, params: Vec<f64>) -> Self {
        match system {
            PdeSystem::ReactionDiffusion => Self::ReactionDiffusion(ReactionDiffusion::new(
                rd_grid(),
                RD_DIFFUSION,
                Reaction::Learned(PointwiseMlp::new(RD_HIDDEN, params)),
            )),
            PdeSystem::Burgers => Self::Burgers(Burgers::new(data::burgers_axis(BURGERS_COARSE), BURGERS_NU, Convection::Learned(params))),
        }
    }
    /// The baseline the learned layer is compared with: diffusion alone (no reaction) or the
    /// coarse central scheme.
    pub fn baseline(system: PdeSystem) -> Self {
        match system {
            PdeSystem::ReactionDiffusion => {
                Self::ReactionDiffusion(ReactionDiffusion::new(rd_grid(), RD_DIFFUSION, Reaction::FisherKpp { rate: 0.0 }))
            }
            PdeSystem::Burgers => Self::Burgers(Burgers::new(data::burgers_axis(BURGERS_COARSE), BURGERS_NU, Convection::Central)),
        }
    }
}

impl Dynamics<Vec<f64>> for PdeLayer {
    fn eval(&mut self, t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        match self {
            Self::ReactionDiffusion(f) => f.eval(t, y, dy),
            Self::Burgers(f) => f.eval(t, y, dy),
        }
    }
}

impl VjpDynamics<Vec<f64>> for PdeLayer {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        match self {
            Self::ReactionDiffusion(f) => f.param_zeros(),
            Self::Burgers(f) => f.param_zeros(),
        }
    }
    fn vjp(&mut self, t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        match self {
            Self::ReactionDiffusion(f) => f.vjp(t, y, a, adj_y, adj_p),
            Self::Burgers(f) => f.vjp(t, y, a, adj_y, adj_p),
        }
    }
}

/// The reaction-diffusion grid.
pub fn rd_grid() -> Grid {
    Grid::OneD(Axis::new(RD_CELLS, 1.0, Boundary::Neumann))
}

/// Initial parameters: a seeded small network (reaction-diffusion) or the central scheme
/// (Burgers).
pub fn initial_params(system: PdeSystem, seed: u64) -> Vec<f64> {
    match system {
        PdeSystem::ReactionDiffusion => {
            let h = RD_HIDDEN;
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
            let s = 1.0 / (h as f64).sqrt();
            let mut p = Vec::with_capacity(PointwiseMlp::param_count(h));
            p.extend((0..2 * h).map(|_| rng.gen_range(-1.0..1.0)));
            p.extend((0..h * h + h).map(|_| rng.gen_range(-s..s)));
            p.extend((0..h).map(|_| rng.gen_range(-s..s) * 0.1));
            p.push(0.0);
            p
        }
        PdeSystem::Burgers => Convection::central_weights(&data::burgers_axis(BURGERS_COARSE)),
    }
}

/// Options of the training solves.
pub fn training_options(rtol: f64) -> SolveOptions {
    SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Kvaerno5).with_tol(rtol, rtol * 1e-2).with_max_steps(100_000)
}

/// The data of a run: training and test trajectories (test ones to `2 T`).
#[derive(Debug, Clone)]
pub struct PdeData {
    /// Training snapshots over `[0, T]`.
    pub train: Trajectories,
    /// Held-out snapshots over `[0, 2 T]`.
    pub test: Trajectories,
    /// Burgers only: the fine simulation's largest error against Cole-Hopf.
    pub fine_vs_exact: Option<f64>,
}

/// Generate the data of `config`.
pub fn make_data(config: &PdeConfig) -> Result<PdeData, SolveError> {
    let t = config.horizon;
    let k = config.snapshots;
    let train_ts: Vec<f64> = (0..=k).map(|i| t * i as f64 / k as f64).collect();
    let test_ts: Vec<f64> = (0..=2 * k).map(|i| t * i as f64 / k as f64).collect();
    match config.system {
        PdeSystem::ReactionDiffusion => {
            let Grid::OneD(axis) = rd_grid() else { unreachable!("the reaction-diffusion grid is 1-D") };
            let mut truth = data::fisher_kpp(rd_grid(), RD_DIFFUSION, RD_RATE);
            let opts = data::truth_options();
            let train = data::simulate(&mut truth, &data::bump_fields(&axis, config.train_fields, config.seed), &train_ts, &opts)?;
            let test = data::simulate(&mut truth, &data::bump_fields(&axis, config.test_fields, config.seed + 1_000_003), &test_ts, &opts)?;
            Ok(PdeData { train, test, fine_vs_exact: None })
        }
        PdeSystem::Burgers => {
            let fine = data::burgers_axis(BURGERS_FINE);
            let every = BURGERS_FINE / BURGERS_COARSE;
            let train =
                data::burgers_data(&fine, every, BURGERS_NU, &data::sine_fields(&fine, config.train_fields, config.seed), &train_ts)?;
            let test = data::burgers_data(
                &fine,
                every,
                BURGERS_NU,
                &data::sine_fields(&fine, config.test_fields, config.seed + 1_000_003),
                &test_ts,
            )?;
            let check = data::fine_check(&fine, BURGERS_NU, &test_ts)?;
            Ok(PdeData { train, test, fine_vs_exact: Some(check) })
        }
    }
}

/// Mean squared error of `layer`'s solution from each field's first snapshot against the rest,
/// and (with `grad`) its gradient in the layer's parameters.
pub fn loss_and_grad(layer: &mut PdeLayer, data: &Trajectories, opts: &SolveOptions, grad: bool) -> Result<(f64, Vec<f64>), SolveError> {
    let mut g = layer.param_zeros();
    let mut loss = 0.0;
    let count = (data.fields.len() * (data.ts.len() - 1) * data.fields[0][0].len()) as f64;
    for field in &data.fields {
        if grad {
            let (sol, back) = solve_for_gradients(layer, &field[0], &data.ts, opts, &RmsNorm, GradMethod::Backprop).map_err(|e| e.error)?;
            let mut ybar = Vec::with_capacity(sol.ys.len());
            for (k, (y, d)) in sol.ys.iter().zip(field).enumerate() {
                let r: Vec<f64> = y.iter().zip(d).map(|(a, b)| if k == 0 { 0.0 } else { a - b }).collect();
                loss += r.iter().map(|v| v * v).sum::<f64>() / count;
                ybar.push(r.iter().map(|v| 2.0 * v / count).collect());
            }
            let aopts = AdjointOptions { solve: opts.clone(), seminorm: false };
            let gr = back.gradients(layer, &data.ts, &sol.ys, &ybar, &aopts, false)?;
            for (a, b) in g.iter_mut().zip(&gr.params) {
                *a += b;
            }
        } else {
            let sol = solve(layer, &field[0], &data.ts, opts, &RmsNorm).map_err(|e| e.error)?;
            for (y, d) in sol.ys.iter().zip(field).skip(1) {
                loss += y.iter().zip(d).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / count;
            }
        }
    }
    Ok((loss, g))
}

/// Root-mean-square error over the grid and the fields, per snapshot time, of `layer`'s rollout
/// from each field's initial state against the data; and the rollouts of field 0.
pub fn rollout_errors(layer: &mut PdeLayer, data: &Trajectories, opts: &SolveOptions) -> Result<(Vec<f64>, Vec<Vec<f64>>), SolveError> {
    let mut sq = vec![0.0; data.ts.len()];
    let mut first = Vec::new();
    for (i, field) in data.fields.iter().enumerate() {
        let sol = solve(layer, &field[0], &data.ts, opts, &RmsNorm).map_err(|e| e.error)?;
        for (k, (y, d)) in sol.ys.iter().zip(field).enumerate() {
            sq[k] += y.iter().zip(d).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len() as f64;
        }
        if i == 0 {
            first = sol.ys;
        }
    }
    let n = data.fields.len() as f64;
    Ok((sq.iter().map(|s| (s / n).sqrt()).collect(), first))
}

/// Everything a run produces.
#[derive(Debug, Clone)]
pub struct PdeRun {
    /// The learned parameters.
    pub params: Vec<f64>,
    /// Training loss per iteration.
    pub losses: Vec<f64>,
    /// Median seconds per training iteration.
    pub seconds_per_iter: f64,
    /// The data.
    pub data: PdeData,
    /// Test RMSE per test snapshot time: learned, baseline, initial parameters.
    pub rollout: [Vec<f64>; 3],
    /// Learned and true rollouts of test field 0 (per snapshot).
    pub example: [Vec<Vec<f64>>; 2],
}

/// Train `config` (calling `progress(iteration, loss)` after each iteration) and evaluate.
pub fn train(config: &PdeConfig, mut progress: impl FnMut(usize, f64)) -> Result<PdeRun, SolveError> {
    let data = make_data(config)?;
    let opts = training_options(config.rtol);
    let init = initial_params(config.system, config.seed);
    let mut params = init.clone();
    let mut adam = FlatOptimizer::adam(params.len(), config.lr);
    let mut losses = Vec::with_capacity(config.iters);
    let mut times = Vec::with_capacity(config.iters);
    for it in 0..config.iters {
        let start = std::time::Instant::now();
        let mut layer = PdeLayer::learned(config.system, params.clone());
        let (loss, grad) = loss_and_grad(&mut layer, &data.train, &opts, true)?;
        adam.step(&mut params, &grad);
        adam.lr *= config.lr_decay;
        times.push(start.elapsed().as_secs_f64());
        losses.push(loss);
        progress(it, loss);
    }
    times.sort_by(f64::total_cmp);
    let seconds_per_iter = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let eval_opts = training_options(1e-8);
    let (learned, ex) = rollout_errors(&mut PdeLayer::learned(config.system, params.clone()), &data.test, &eval_opts)?;
    let (baseline, _) = rollout_errors(&mut PdeLayer::baseline(config.system), &data.test, &eval_opts)?;
    let (initial, _) = rollout_errors(&mut PdeLayer::learned(config.system, init), &data.test, &eval_opts)?;
    let truth = data.test.fields[0].clone();
    Ok(PdeRun { params, losses, seconds_per_iter, data, rollout: [learned, baseline, initial], example: [ex, truth] })
}
