//! Continuous normalising flows (Chen et al. 2018; FFJORD, Grathwohl et al. 2019) on any burn
//! module that provides Jacobian-vector products ([`OdeFunc::forward_jvp`], built from
//! [`crate::jvp`] layers).
//!
//! The flow maps data `x = z(0)` to `z(T)` under `dz/dt = f(t, z)`; by the instantaneous change of
//! variables `d log p(z(t))/dt = -tr(∂f/∂z)`, so with the state `[z, Δ]`, `Δ(0) = 0`,
//! `dΔ/dt = -tr(∂f/∂z)`:
//!
//! ```text
//! log p_x(x) = log N(z(T); 0, I) - Δ(T)
//! ```
//!
//! The trace is exact ([`Trace::Exact`]: `d` Jacobian-vector products along the basis vectors,
//! batched into one call as stacked tangents) or Hutchinson's unbiased estimate
//! ([`Trace::Hutchinson`]: `tr J = E[εᵀ J ε]` with Rademacher or Gaussian probes `ε`, drawn from a
//! seed and fixed for a solve and its backward pass). Optional accumulators integrate the RNODE
//! penalties (Finlay et al. 2020) per sample: the kinetic energy `∫ ‖f‖² dt` and the Jacobian
//! Frobenius norm `∫ ‖∂f/∂z‖_F² dt` (exact with the exact trace, `‖J ε‖²` averaged over probes
//! with Hutchinson's). Everything is ordinary tensor algebra on the module's JVP, so burn's
//! reverse mode gives exact gradients of the log-likelihood and the penalties, second-order terms
//! included, under every gradient method of [`NeuralOde`] (backprop through the solver,
//! checkpointing, the continuous adjoint).
//!
//! Step control: by default the error norm is `max(RMS(z), RMS(Δ))` and the penalty
//! accumulators are left out ([`CnfSettings::penalties_in_error_control`]), as in RNODE.
//! Sampling solves the plain flow backwards from `z(T) ~ N(0, I)` ([`Cnf::sample`]).

mod field;
#[cfg(test)]
mod tests;

pub use field::{CnfField, probe_vectors};

use crate::jvp::JvpError;
use crate::neural_ode::{BackwardReport, NeuralOde, OdeFunc, OdeSettings};
use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;
use nodal_solve::{ColumnGroupsNorm, NormChoice, SolveError, Stats};
use thiserror::Error;

/// How `tr(∂f/∂z)` is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// Exactly: one JVP per dimension (batched into one call).
    Exact,
    /// Hutchinson's estimator with `probes` probe vectors per sample.
    Hutchinson {
        /// Probe vectors per sample (1 in FFJORD).
        probes: usize,
        /// Their distribution.
        distribution: Probe,
    },
}

impl Trace {
    /// Hutchinson's estimator with one Rademacher probe (FFJORD's choice for toys).
    pub fn hutchinson() -> Self {
        Self::Hutchinson { probes: 1, distribution: Probe::Rademacher }
    }
    /// Parse `exact`, `hutchinson` / `hutch` (one Rademacher probe), `gaussian` (one Gaussian probe).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Self::Exact),
            "hutchinson" | "hutch" | "rademacher" => Some(Self::hutchinson()),
            "gaussian" => Some(Self::Hutchinson { probes: 1, distribution: Probe::Gaussian }),
            _ => None,
        }
    }
    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Hutchinson { distribution: Probe::Rademacher, .. } => "hutchinson",
            Self::Hutchinson { distribution: Probe::Gaussian, .. } => "gaussian",
        }
    }
}

/// Distribution of Hutchinson probes (both have `E[ε εᵀ] = I`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Entries ±1 with equal probability (the lower-variance choice).
    Rademacher,
    /// Standard normal entries.
    Gaussian,
}

/// What a flow integrates and how it controls its steps.
#[derive(Debug, Clone)]
pub struct CnfSettings {
    /// The trace computation.
    pub trace: Trace,
    /// Integrate `∫ ‖f‖² dt` per sample.
    pub kinetic: bool,
    /// Integrate `∫ ‖∂f/∂z‖_F² dt` per sample.
    pub jacobian: bool,
    /// Include the penalty accumulators in the error norm (default `false`, RNODE practice).
    pub penalties_in_error_control: bool,
    /// End time `T` of the flow (from data at 0 to the base density at `T`).
    pub t1: f64,
}

impl Default for CnfSettings {
    fn default() -> Self {
        Self { trace: Trace::Exact, kinetic: false, jacobian: false, penalties_in_error_control: false, t1: 1.0 }
    }
}

impl CnfSettings {
    /// Set the trace.
    pub fn with_trace(mut self, trace: Trace) -> Self {
        self.trace = trace;
        self
    }
    /// Integrate the kinetic and/or Jacobian penalties.
    pub fn with_penalties(mut self, kinetic: bool, jacobian: bool) -> Self {
        self.kinetic = kinetic;
        self.jacobian = jacobian;
        self
    }
    /// Number of penalty accumulators.
    pub fn n_penalties(&self) -> usize {
        self.kinetic as usize + self.jacobian as usize
    }
    /// The error norm over rows `[z (dim), Δ, penalties]`.
    pub fn norm(&self, dim: usize) -> NormChoice {
        let w = dim + 1 + self.n_penalties();
        let mut groups = vec![(0, dim), (dim, dim + 1)];
        if self.penalties_in_error_control {
            groups.extend((dim + 1..w).map(|c| (c, c + 1)));
        }
        NormChoice::Columns(ColumnGroupsNorm::new(w, &groups))
    }
}

/// Why a flow could not be evaluated.
#[derive(Debug, Error)]
pub enum CnfError {
    /// The dynamics provide no JVPs.
    #[error(transparent)]
    Jvp(#[from] JvpError),
    /// The solve failed (time, step size and the cause inside).
    #[error("continuous normalising flow: {0}")]
    Solve(#[from] SolveError),
    /// Bad input shape or settings.
    #[error("continuous normalising flow: {0}")]
    Invalid(String),
}

/// Result of [`Cnf::log_prob`].
pub struct CnfOutput {
    /// `log p(x)` per sample, `[batch]` (tracked under autodiff).
    pub log_prob: Tensor<1>,
    /// `z(T)`, `[batch, dim]`.
    pub z: Tensor<2>,
    /// `Δ(T) = -∫ tr(∂f/∂z) dt`, `[batch]`.
    pub delta_logp: Tensor<1>,
    /// Batch means of the integrated penalties, `[kinetic?, jacobian?]` in that order (`None`
    /// without penalties); add `λ · penalties` to the loss.
    pub penalties: Option<Tensor<1>>,
    /// Forward work.
    pub stats: Stats,
    /// Backward work once burn's backward has run.
    pub backward: BackwardReport,
}

/// A continuous normalising flow with dynamics `func`. See the module docs.
#[derive(Module, Debug)]
pub struct Cnf<M: OdeFunc> {
    /// The dynamics `f(t, z)`.
    pub func: M,
    /// What the flow integrates.
    #[module(skip)]
    pub settings: CnfSettings,
    /// Solver settings under autodiff.
    #[module(skip)]
    pub train: OdeSettings,
    /// Solver settings on plain inputs.
    #[module(skip)]
    pub eval: OdeSettings,
}

/// `log N(z; 0, I)` per row.
pub fn standard_normal_log_density(z: Tensor<2>) -> Tensor<1> {
    let [b, d] = z.dims();
    z.square().sum_dim(1).mul_scalar(-0.5).add_scalar(-0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()).reshape([b])
}

impl<M: OdeFunc + ModuleDisplay> Cnf<M> {
    /// A flow with the given settings (the error norm of both solver settings is replaced by
    /// [`CnfSettings::norm`]).
    pub fn new(func: M, settings: CnfSettings, train: OdeSettings, eval: OdeSettings) -> Self {
        Self { func, settings, train, eval }
    }

    /// `log p(x)` of every row of `x` (`[batch, dim]`); `seed` draws Hutchinson probes (unused
    /// with the exact trace).
    pub fn log_prob(&self, x: Tensor<2>, seed: u64) -> Result<CnfOutput, CnfError> {
        let [b, d] = x.dims();
        if b == 0 || d == 0 {
            return Err(CnfError::Invalid(format!("input must be [batch >= 1, dim >= 1], got [{b}, {d}]")));
        }
        if !self.func.has_jvp() {
            let feature = match self.settings.trace {
                Trace::Exact => "the exact trace",
                Trace::Hutchinson { .. } => "Hutchinson's trace estimator",
            };
            return Err(JvpError::NotProvided { feature, module: std::any::type_name::<M>() }.into());
        }
        if let Trace::Hutchinson { probes: 0, .. } = self.settings.trace {
            return Err(CnfError::Invalid("Hutchinson's estimator needs at least one probe (got 0)".into()));
        }
        let field = CnfField::new(self.func.clone(), &self.settings, b, d, seed);
        let np = self.settings.n_penalties();
        let w = d + 1 + np;
        let norm = self.settings.norm(d);
        let ode = NeuralOde::new(field, self.train.clone().with_norm(norm.clone()), self.eval.clone().with_norm(norm));
        let state0 = Tensor::cat(vec![x.clone(), Tensor::<2>::zeros([b, 1 + np], (&x.device(), x.dtype()))], 1);
        let out = ode.forward(state0, &[0.0, self.settings.t1])?;
        let last = out.ys.slice([1..2, 0..b, 0..w]).reshape([b, w]);
        let z = last.clone().slice([0..b, 0..d]);
        let delta = last.clone().slice([0..b, d..d + 1]).reshape([b]);
        let log_prob = standard_normal_log_density(z.clone()) - delta.clone();
        let penalties = (np > 0).then(|| last.slice([0..b, d + 1..w]).mean_dim(0).reshape([np]));
        Ok(CnfOutput { log_prob, z, delta_logp: delta, penalties, stats: out.stats, backward: out.backward })
    }

    /// Samples: the plain flow solved backwards from `z` (`[batch, dim]`, draws of `N(0, I)`) at
    /// `T` to 0, with the evaluation settings (RMS error norm over `z`).
    pub fn sample(&self, z: Tensor<2>) -> Result<(Tensor<2>, Stats), CnfError> {
        let [b, d] = z.dims();
        let ode =
            NeuralOde::new(self.func.clone(), self.train.clone().with_norm(NormChoice::Rms), self.eval.clone().with_norm(NormChoice::Rms));
        let out = ode.forward(z, &[self.settings.t1, 0.0])?;
        Ok((out.ys.slice([1..2, 0..b, 0..d]).reshape([b, d]), out.stats))
    }
}
