//! `NeuralOde`: a burn module whose output is the solution of `dy/dt = f(t, y)` with `f` any
//! burn module implementing [`OdeFunc`] (Chen et al. 2018, "Neural Ordinary Differential
//! Equations").
//!
//! The batch is solved as one "giant ODE" (RMS error norm over all rows), with separate solver
//! settings for training (inputs on an autodiff device) and evaluation (plain inputs). Under
//! autodiff the whole solve is one node of burn's graph ([`node`]): layers before and after the
//! block train end to end with burn's optimisers, whichever gradient method is chosen.
//!
//! ```no_run
//! use nodal::burn::prelude::*;
//! use nodal::burn::nn::{Linear, LinearConfig};
//! use nodal::neural_ode::{NeuralOde, OdeFunc, OdeSettings};
//! use nodal::solve::grad::GradMethod;
//!
//! #[derive(Module, Debug)]
//! struct Field { l1: Linear, l2: Linear }
//! impl OdeFunc for Field {
//!     fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> { self.l2.forward(self.l1.forward(y).tanh()) }
//! }
//! let dev = Device::flex().autodiff();
//! let field = Field { l1: LinearConfig::new(2, 16).init(&dev), l2: LinearConfig::new(16, 2).init(&dev) };
//! let ode = NeuralOde::new(field, OdeSettings::dopri5(1e-5, 1e-7).with_grad(GradMethod::Adjoint), OdeSettings::dopri5(1e-3, 1e-5));
//! let y0 = Tensor::<2>::ones([4, 2], &dev);
//! let out = ode.forward(y0, &[0.0, 1.0]).unwrap();   // out.ys: [times, batch, dim]
//! let grads = out.ys.square().sum().backward();     // gradients reach every parameter of `field`
//! ```

pub mod augment;
pub mod module_dynamics;
pub mod node;
pub mod penalties;
pub mod shaped;

use crate::jvp::{Dual, JvpError};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor, TensorData};
use module_dynamics::{Element, ModuleDynamics, host};
use nodal_solve::grad::{AdjointOptions, Backward, GradMethod, solve_for_gradients};
use nodal_solve::per_sample::{RowDynamics, RowSolution, per_sample_gradients, solve_per_sample};
use nodal_solve::regularise::{FirstOrder, Penalty, Regularised};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{Dynamics, NormChoice, SolveError, SolveOptions, Stats, VjpDynamics};
use node::{HostBackward, OdeCall, ode_node};
use std::sync::{Arc, Mutex};

/// Memory a tracked solve with backprop may spend on remembered evaluations of a module (the
/// stage replays of the reverse pass read them instead of running the forward). Backprop keeps
/// every step's state anyway; this adds at most twice the state per stage evaluation.
const REPLAY_MEMO_BYTES: usize = 256 << 20;

/// Dynamics `f(t, y)` as a burn module: `y` is `[batch, dim]`, the result has the same shape.
/// Time conditioning is the module's choice (concatenate `t` as a feature, modulate, ignore).
pub trait OdeFunc: Module + Clone + Send + 'static {
    /// `dy/dt` at time `t` for every row of `y`.
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2>;

    /// Whether [`OdeFunc::forward_jvp`] is implemented. Features that need Jacobian-vector
    /// products (traces of continuous normalising flows, Jacobian and second-order penalties)
    /// check this and return [`JvpError::NotProvided`] for dynamics that answer `false`.
    fn has_jvp(&self) -> bool {
        false
    }

    /// `dy/dt` and its Jacobian (with respect to `y`) applied to stacked tangents
    /// ([`crate::jvp::Dual`]): implement it by chaining [`crate::jvp`] layers, and answer `true`
    /// in [`OdeFunc::has_jvp`]. The default reports [`JvpError::NotProvided`].
    fn forward_jvp(&self, _t: f64, _y: Dual<2>) -> Result<Dual<2>, JvpError> {
        Err(JvpError::NotProvided { feature: "this feature", module: std::any::type_name::<Self>() })
    }

    /// `dy/dt` with row `r` at time `t[r]` (per-sample mode). The default calls
    /// [`OdeFunc::forward`] once per run of rows sharing a time; autonomous or tensor-time
    /// dynamics can override it with one batched call.
    fn forward_per_row(&self, t: &[f64], y: Tensor<2>) -> Tensor<2> {
        let rows = t.len();
        if rows == 0 || t.iter().all(|&x| x == t[0]) {
            return self.forward(t.first().copied().unwrap_or(0.0), y);
        }
        let dim = y.dims()[1];
        let mut parts = Vec::new();
        let mut start = 0;
        while start < rows {
            let mut end = start + 1;
            while end < rows && t[end] == t[start] {
                end += 1;
            }
            parts.push(self.forward(t[start], y.clone().slice([start..end, 0..dim])));
            start = end;
        }
        Tensor::cat(parts, 0)
    }
}

/// Solver and gradient settings of one mode (training or evaluation).
#[derive(Debug, Clone)]
pub struct OdeSettings {
    /// Method, tolerances, limits.
    pub solve: SolveOptions,
    /// Gradient method used under autodiff.
    pub grad: GradMethod,
    /// Error control on `y` and `a` only in the adjoint's reverse solve.
    pub adjoint_seminorm: bool,
    /// Method and tolerances of the adjoint's reverse solve (`None`: the forward ones).
    pub adjoint_solve: Option<SolveOptions>,
    /// Solve every row with its own step size ([`nodal_solve::per_sample`]) instead of the
    /// batch as one ODE.
    pub per_sample: bool,
    /// Penalties integrated along the solve ([`nodal_solve::regularise`]); their values at the
    /// last output time come back in [`OdeOutput::penalties`], to be weighted into the loss.
    /// Every penalty works on modules that provide JVPs ([`OdeFunc::forward_jvp`], joint batch
    /// mode, see [`penalties`]); modules with vector-Jacobian products only get
    /// [`Penalty::Kinetic`], and a Jacobian penalty asked of them is a typed error.
    pub penalties: Vec<Penalty>,
    /// Error norm of the forward solve (joint mode): RMS over the whole state by default, or
    /// column groups ([`nodal_solve::ColumnGroupsNorm`], over rows of the state's width), e.g.
    /// to keep penalty accumulators out of step control.
    pub norm: NormChoice,
    /// Seed of the Jacobian penalty's Rademacher probes (fixed for a solve and its backward
    /// pass; vary it per training iteration).
    pub probe_seed: u64,
}

impl OdeSettings {
    /// dopri5 at the given tolerances, exact backprop through the solver.
    pub fn dopri5(rtol: f64, atol: f64) -> Self {
        Self::new(SolveOptions::new(&DOPRI5).with_tol(rtol, atol))
    }
    /// Any solver options.
    pub fn new(solve: SolveOptions) -> Self {
        Self {
            solve,
            grad: GradMethod::Backprop,
            adjoint_seminorm: false,
            adjoint_solve: None,
            per_sample: false,
            penalties: Vec::new(),
            norm: NormChoice::Rms,
            probe_seed: 0,
        }
    }
    /// Set the gradient method.
    pub fn with_grad(mut self, grad: GradMethod) -> Self {
        self.grad = grad;
        self
    }
    /// Own method and tolerances for the adjoint's reverse solve, and the seminorm option.
    pub fn with_adjoint(mut self, solve: SolveOptions, seminorm: bool) -> Self {
        self.adjoint_solve = Some(solve);
        self.adjoint_seminorm = seminorm;
        self
    }
    /// Options of the adjoint's reverse solve.
    pub fn adjoint_options(&self) -> AdjointOptions {
        AdjointOptions { solve: self.adjoint_solve.clone().unwrap_or_else(|| self.solve.clone()), seminorm: self.adjoint_seminorm }
    }
    /// Set the tolerances.
    pub fn with_tol(mut self, rtol: f64, atol: f64) -> Self {
        self.solve = self.solve.with_tol(rtol, atol);
        self
    }
    /// Integrate these penalties along the solve (see [`OdeSettings::penalties`]).
    pub fn with_penalties(mut self, penalties: &[Penalty]) -> Self {
        self.penalties = penalties.to_vec();
        self
    }
    /// Set the forward solve's error norm (see [`OdeSettings::norm`]).
    pub fn with_norm(mut self, norm: NormChoice) -> Self {
        self.norm = norm;
        self
    }
    /// Seed of the Jacobian penalty's probes (see [`OdeSettings::probe_seed`]).
    pub fn with_probe_seed(mut self, seed: u64) -> Self {
        self.probe_seed = seed;
        self
    }
    /// Per-sample (`true`) or joint (`false`, default) batch mode.
    pub fn with_per_sample(mut self, per_sample: bool) -> Self {
        self.per_sample = per_sample;
        self
    }
}

/// A neural ODE block. See the module docs.
#[derive(Module, Debug)]
pub struct NeuralOde<M: OdeFunc> {
    /// The dynamics.
    pub func: M,
    /// Settings when the input is on an autodiff device.
    #[module(skip)]
    pub train: OdeSettings,
    /// Settings for plain (inference) inputs.
    #[module(skip)]
    pub eval: OdeSettings,
}

/// What the backward pass did (filled in when burn runs the node's backward).
pub type BackwardReport = Arc<Mutex<Option<Result<Stats, SolveError>>>>;

/// Output of [`NeuralOde::forward`].
pub struct OdeOutput {
    /// Solutions at the output times, `[times, batch, dim]`.
    pub ys: Tensor<3>,
    /// Forward work.
    pub stats: Stats,
    /// Backward work, or the failure of the reverse solve, once burn's backward has run.
    pub backward: BackwardReport,
    /// Per-sample mode: each row's failure (`None` for rows that finished; a failed row's
    /// outputs after its failure are NaN) and work. Empty in joint mode.
    pub row_status: Vec<Option<SolveError>>,
    /// Per-sample mode: work per row (`nfe` counts the evaluations that included the row).
    pub row_stats: Vec<Stats>,
    /// Values of [`OdeSettings::penalties`] integrated from the first to the last output time,
    /// `[penalties]` (tracked: add `λ · penalties` to the loss to regularise). `None` without
    /// penalties.
    pub penalties: Option<Tensor<1>>,
}

impl OdeOutput {
    /// Work of the backward pass: `None` until burn's backward has run through this block,
    /// then the statistics or the reverse solve's failure.
    pub fn backward_stats(&self) -> Option<Result<Stats, SolveError>> {
        self.backward.lock().ok().and_then(|g| g.clone())
    }
}

/// Gathers all parameters as one flat tracked tensor (the node's `theta` parent).
struct Flatten(Vec<Tensor<1>>);
impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let n = p.lazy_shape().num_elements();
        self.0.push(p.val().reshape([n]));
    }
}

/// Split flattened output cotangents into one state per output time.
fn split_cotangents<T: Element>(gys: TensorData, n: usize) -> Vec<Vec<T>> {
    let g: Vec<T> = gys.convert::<T>().try_into_vec::<T>().expect("converted to the state's element type");
    g.chunks(n).map(|c| c.to_vec()).collect()
}

/// Turn a gradient result into the node's parent gradients (NaN on failure) and record the
/// backward statistics or the error for the caller.
fn finish_backward<T: Element>(
    res: Result<(Vec<T>, Vec<T>, Stats), SolveError>,
    shape: [usize; 2],
    n_params: usize,
    report: &BackwardReport,
) -> (TensorData, TensorData) {
    let (gy0, gp, outcome) = match res {
        Ok((gy0, gp, stats)) => (gy0, gp, Ok(stats)),
        Err(e) => (vec![T::from_f64(f64::NAN); shape[0] * shape[1]], vec![T::from_f64(f64::NAN); n_params], Err(e)),
    };
    *report.lock().expect("report lock") = Some(outcome);
    (TensorData::new(gy0, shape), TensorData::new(gp, [n_params]))
}

/// The host side of a joint-mode solve: dynamics `D` over states of `batch * dim` entries
/// followed by `extra` penalty accumulators.
struct HostOde<D, T: Element> {
    dynamics: D,
    backward: Backward<Vec<T>>,
    ts: Vec<f64>,
    ys: Vec<Vec<T>>,
    settings: OdeSettings,
    shape: [usize; 2],
    extra: usize,
    report: BackwardReport,
}

impl<D: VjpDynamics<Vec<T>, Params = Vec<T>> + Send, T: Element> HostBackward for HostOde<D, T> {
    fn outputs(&self) -> TensorData {
        TensorData::new(self.ys.concat(), [self.ys.len() * (self.shape[0] * self.shape[1] + self.extra)])
    }
    fn backward(&mut self, gys: TensorData) -> (TensorData, TensorData) {
        let ybar: Vec<Vec<T>> = split_cotangents(gys, self.shape[0] * self.shape[1] + self.extra);
        let res = self.backward.gradients(&mut self.dynamics, &self.ts, &self.ys, &ybar, &self.settings.adjoint_options(), false);
        let np = self.dynamics.param_zeros().len();
        let n = self.shape[0] * self.shape[1];
        finish_backward(res.map(|mut g| (g.y0.drain(..n).collect(), g.params, g.stats)), self.shape, np, &self.report)
    }
}

/// The host side of a per-sample solve: row dynamics `D` over rows of `dim` states followed by
/// `extra` penalty accumulators.
struct HostOdeRows<D, T: Element> {
    dynamics: D,
    sol: RowSolution<T>,
    ts: Vec<Vec<f64>>,
    settings: OdeSettings,
    shape: [usize; 2],
    extra: usize,
    report: BackwardReport,
}

impl<D: RowDynamics<T> + VjpDynamics<Vec<T>, Params = Vec<T>> + Send, T: Element> HostBackward for HostOdeRows<D, T> {
    fn outputs(&self) -> TensorData {
        TensorData::new(self.sol.ys.concat(), [self.sol.ys.len() * self.shape[0] * (self.shape[1] + self.extra)])
    }
    fn backward(&mut self, gys: TensorData) -> (TensorData, TensorData) {
        let [b, d] = self.shape;
        let w = d + self.extra;
        let ybar: Vec<Vec<T>> = split_cotangents(gys, b * w);
        let np = self.dynamics.param_zeros().len();
        let res = per_sample_gradients(
            &mut self.dynamics,
            &self.sol,
            &self.ts,
            &ybar,
            w,
            self.settings.grad,
            &self.settings.solve,
            &self.settings.adjoint_options(),
        );
        // The accumulators start at zero whatever y0 is: keep each row's state part.
        let strip = |g: Vec<T>| g.chunks(w).flat_map(|row| row[..d].to_vec()).collect();
        finish_backward(res.map(|(g, _)| (strip(g.y0), g.params, g.stats)), self.shape, np, &self.report)
    }
}

impl<M: OdeFunc + burn::module::ModuleDisplay> NeuralOde<M> {
    /// A block with training and evaluation settings.
    pub fn new(func: M, train: OdeSettings, eval: OdeSettings) -> Self {
        Self { func, train, eval }
    }

    /// Solve from `y0` (`[batch, dim]`) and return the states at `ts` (`ts[0]` is the start
    /// time; ascending or descending). Uses the training settings when `y0` is on an autodiff
    /// device, the evaluation settings otherwise.
    pub fn forward(&self, y0: Tensor<2>, ts: &[f64]) -> Result<OdeOutput, SolveError> {
        if y0.dtype() == DType::F64 { self.forward_typed::<f64>(y0, ts) } else { self.forward_typed::<f32>(y0, ts) }
    }

    fn forward_typed<T: Element>(&self, y0: Tensor<2>, ts: &[f64]) -> Result<OdeOutput, SolveError> {
        let tracked = y0.is_autodiff();
        let settings = if tracked { self.train.clone() } else { self.eval.clone() };
        if settings.penalties.iter().any(|p| p.needs_jvp()) {
            return self.solve_with_jvp_penalties::<T>(y0, ts, settings);
        }
        self.forward_first_order::<T>(y0, ts, settings)
    }

    /// The solve with first-order information only (penalties, if any, are the kinetic one).
    fn forward_first_order<T: Element>(&self, y0: Tensor<2>, ts: &[f64], settings: OdeSettings) -> Result<OdeOutput, SolveError> {
        let tracked = y0.is_autodiff();
        let [b, d] = y0.dims();
        let device = y0.device();
        let y0h: Vec<T> = host::<T, 2>(y0.clone());
        let mut dynamics = ModuleDynamics::new(&self.func, &device, d);
        // Untracked solves record nothing (the adjoint's recording).
        let grad = if tracked { settings.grad } else { GradMethod::Adjoint };
        if grad == GradMethod::Backprop && !settings.per_sample {
            // Backprop replays every step's stage evaluations before its VJPs. (Not for
            // checkpointing, whose point is to keep little in memory.)
            dynamics.remember_evaluations(REPLAY_MEMO_BYTES);
        }
        let record = grad.record(ts, settings.solve.step);
        if settings.per_sample {
            if settings.penalties.is_empty() {
                return self.solve_rows(dynamics, y0, &y0h, ts, settings, record, [b, d]);
            }
            let reg = Regularised::new(FirstOrder(dynamics), d, &settings.penalties, 0)?;
            return self.solve_rows(reg, y0, &y0h, ts, settings, record, [b, d]);
        }
        if !settings.penalties.is_empty() {
            let reg = Regularised::new(FirstOrder(dynamics), d, &settings.penalties, 0)?;
            return self.solve_joint(reg, y0, &y0h, ts, settings, grad, [b, d]);
        }
        self.solve_joint(dynamics, y0, &y0h, ts, settings, grad, [b, d])
    }

    /// Every row its own solve with row dynamics `f` over `[y_r, r's penalty accumulators]`
    /// (`f` is [`Regularised`] when penalties are on: each row integrates its own penalties, and
    /// the reported values are their mean over rows, the joint mode's definition).
    #[allow(clippy::too_many_arguments)]
    fn solve_rows<T: Element, D: RowDynamics<T> + VjpDynamics<Vec<T>, Params = Vec<T>> + Send + 'static>(
        &self,
        mut f: D,
        y0: Tensor<2>,
        y0h: &[T],
        ts: &[f64],
        settings: OdeSettings,
        record: nodal_solve::Record,
        [b, d]: [usize; 2],
    ) -> Result<OdeOutput, SolveError> {
        let extra = settings.penalties.len();
        let w = d + extra;
        let device = y0.device();
        let mut y0a = Vec::with_capacity(b * w);
        for row in y0h.chunks(d) {
            y0a.extend_from_slice(row);
            y0a.extend(std::iter::repeat_n(T::from_f64(0.0), extra));
        }
        let grids = vec![ts.to_vec(); b];
        let sol = solve_per_sample(&mut f, &y0a, w, &grids, &settings.solve, record)?;
        let nt = sol.ys.len();
        let stats = Stats {
            nfe: sol.calls,
            nvjp: 0,
            accepted: sol.row_stats.iter().map(|s| s.accepted).sum(),
            rejected: sol.row_stats.iter().map(|s| s.rejected).sum(),
            ..Stats::default()
        };
        let (row_status, row_stats) = (sol.row_status.clone(), sol.row_stats.clone());
        let report: BackwardReport = Arc::new(Mutex::new(None));
        let all = if !y0.is_autodiff() {
            Tensor::<3>::from_data(TensorData::new(sol.ys.concat(), [nt, b, w]), (&device, T::BURN))
        } else {
            let theta = self.theta(&device, T::BURN);
            let host = HostOdeRows { dynamics: f, sol, ts: grids, settings, shape: [b, d], extra, report: report.clone() };
            ode_node(y0, theta, OdeCall(Arc::new(Mutex::new(host)))).reshape([nt, b, w])
        };
        let ys = if extra == 0 { all.clone() } else { all.clone().slice([0..nt, 0..b, 0..d]) };
        let penalties = (extra > 0).then(|| all.slice([nt - 1..nt, 0..b, d..w]).reshape([b, extra]).mean_dim(0).reshape([extra]));
        Ok(OdeOutput { ys, stats, backward: report, row_status, row_stats, penalties })
    }

    /// The batch as one ODE with dynamics `f` over `[y, penalty accumulators]` (`f` is
    /// [`Regularised`] when penalties are on; `extra` accumulators follow the `b * d` states).
    #[allow(clippy::too_many_arguments)]
    fn solve_joint<T: Element, D: VjpDynamics<Vec<T>, Params = Vec<T>> + Dynamics<Vec<T>> + Send + 'static>(
        &self,
        mut f: D,
        y0: Tensor<2>,
        y0h: &[T],
        ts: &[f64],
        settings: OdeSettings,
        grad: GradMethod,
        [b, d]: [usize; 2],
    ) -> Result<OdeOutput, SolveError> {
        let extra = settings.penalties.len();
        let device = y0.device();
        let mut y0a = y0h.to_vec();
        y0a.resize(b * d + extra, T::from_f64(0.0));
        let (sol, backward) = solve_for_gradients(&mut f, &y0a, ts, &settings.solve, &settings.norm.clone(), grad).map_err(|f| f.error)?;
        let report: BackwardReport = Arc::new(Mutex::new(None));
        let nt = sol.ys.len();
        let stats = sol.stats;
        let flat = if y0.is_autodiff() {
            let theta = self.theta(&device, T::BURN);
            let host =
                HostOde { dynamics: f, backward, ts: ts.to_vec(), ys: sol.ys, settings, shape: [b, d], extra, report: report.clone() };
            ode_node(y0, theta, OdeCall(Arc::new(Mutex::new(host))))
        } else {
            Tensor::<1>::from_data(TensorData::new(sol.ys.concat(), [nt * (b * d + extra)]), (&device, T::BURN))
        };
        let all = flat.reshape([nt, b * d + extra]);
        let ys = if extra == 0 { all.clone() } else { all.clone().slice([0..nt, 0..b * d]) }.reshape([nt, b, d]);
        let penalties = (extra > 0).then(|| all.slice([nt - 1..nt, b * d..b * d + extra]).reshape([extra]));
        Ok(OdeOutput { ys, stats, backward: report, row_status: vec![], row_stats: vec![], penalties })
    }

    /// The Jacobian and second-order penalties through the module's JVPs
    /// ([`penalties::PenaltyField`]): rows `[y, accumulators]`, one inner joint solve.
    fn solve_with_jvp_penalties<T: Element>(&self, y0: Tensor<2>, ts: &[f64], settings: OdeSettings) -> Result<OdeOutput, SolveError> {
        use nodal_solve::regularise::RegulariseError;
        if let Some(p) = settings.penalties.iter().find(|p| p.needs_jvp())
            && !self.func.has_jvp()
        {
            return Err(RegulariseError::NeedsJvp { penalty: p.name() }.into());
        }
        if settings.per_sample {
            return Err(RegulariseError::Unsupported(
                "the jacobian and order2 penalties on burn modules need joint batch mode (per-sample mode supports the kinetic penalty)"
                    .into(),
            )
            .into());
        }
        for p in &settings.penalties {
            if let Penalty::JacobianFrobenius { probes: 0 } = p {
                return Err(RegulariseError::NoProbes.into());
            }
        }
        let [b, d] = y0.dims();
        let np = settings.penalties.len();
        let field = penalties::PenaltyField::new(self.func.clone(), &settings.penalties, b, d, settings.probe_seed);
        let mut inner_settings = settings.clone();
        inner_settings.penalties.clear();
        let inner = NeuralOde::new(field, inner_settings.clone(), inner_settings.clone());
        let zeros = Tensor::<2>::zeros([b, np], (&y0.device(), y0.dtype()));
        let out = inner.forward_first_order::<T>(Tensor::cat(vec![y0, zeros], 1), ts, inner_settings)?;
        let nt = out.ys.dims()[0];
        let ys = out.ys.clone().slice([0..nt, 0..b, 0..d]);
        let pen = out.ys.slice([nt - 1..nt, 0..b, d..d + np]).reshape([b, np]).mean_dim(0).reshape([np]);
        Ok(OdeOutput { ys, stats: out.stats, backward: out.backward, row_status: vec![], row_stats: vec![], penalties: Some(pen) })
    }

    /// All parameters flattened into one tracked tensor (the node's `theta` parent).
    fn theta(&self, device: &burn::tensor::Device, dtype: DType) -> Tensor<1> {
        flat_theta(&self.func, device, dtype)
    }
}

/// All float parameters of `module` flattened, in visiting order, into one tensor (tracked where
/// they are): the `theta` parent of a host-computed node such as [`node::ode_node`].
pub(crate) fn flat_theta<M: Module>(module: &M, device: &burn::tensor::Device, dtype: DType) -> Tensor<1> {
    let mut flat = Flatten(Vec::new());
    module.visit(&mut flat);
    if flat.0.is_empty() { Tensor::<1>::zeros([1], (device, dtype)) } else { Tensor::cat(flat.0, 0) }
}
