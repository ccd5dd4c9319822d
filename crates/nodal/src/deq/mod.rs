//! `Deq`: a deep equilibrium layer (Bai et al. 2019, "Deep Equilibrium Models"). Its output is
//! the fixed point `z* = f(z*, x; theta)` of any burn module `f` implementing [`DeqFunc`],
//! found by a root solver, and it is differentiated by the implicit function theorem without
//! storing a single forward iterate.
//!
//! **Forward.** Rows of the batch are solved independently from `z = 0` by Picard iteration,
//! Anderson acceleration or Broyden's method ([`nodal_solve::fixed_point`]); a row that meets
//! the tolerance leaves the batch. `f` must treat rows independently (group or layer norm, not
//! batch norm).
//!
//! **Backward.** With `J = df/dz` at `z*` and `v = dL/dz*`, the implicit function theorem gives
//! `dL/dtheta = g^T df/dtheta` and `dL/dx = g^T df/dx` where `g = (I - J^T)^{-1} v`, i.e. the
//! fixed point of the affine map `g -> J^T g + v`. That fixed point is found by the same solvers
//! (each iteration one vector-Jacobian product of `f` with respect to `z` only, parameters
//! untracked), from `g = v`; one more product gives the parameter and input gradients. Memory is
//! `z*`, `x` and the solver's own history (`memory` vectors per row for Anderson and Broyden),
//! whatever the number of forward iterations. [`DeqGradient::OneStep`] skips the solve and
//! uses `g = v` (Jacobian-free backpropagation, Fung et al. 2022): cheaper, and only exact when
//! `J = 0`; its error is documented by a test.
//!
//! Under autodiff the layer is one node of burn's graph (the same host-computed node as the
//! ODE block, [`crate::neural_ode::node`]), with the injection `x` and the flattened parameters
//! as parents, so layers before and after it train end to end with burn's optimisers.
//!
//! ```no_run
//! use nodal::burn::prelude::*;
//! use nodal::burn::nn::{Linear, LinearConfig};
//! use nodal::deq::{Deq, DeqFunc, DeqSettings};
//!
//! #[derive(Module, Debug)]
//! struct Cell { w: Linear, u: Linear }
//! impl DeqFunc for Cell {
//!     fn forward(&self, z: Tensor<2>, x: Tensor<2>) -> Tensor<2> { (self.w.forward(z) + self.u.forward(x)).tanh() }
//! }
//! let dev = Device::flex().autodiff();
//! let cell = Cell { w: LinearConfig::new(8, 8).with_bias(false).init(&dev), u: LinearConfig::new(3, 8).init(&dev) };
//! let deq = Deq::new(cell, 8, DeqSettings::default(), DeqSettings::default());
//! let x = Tensor::<2>::ones([4, 3], &dev);
//! let out = deq.forward(x).unwrap();            // out.z: [4, 8], out.stats: iterations, residuals
//! let grads = out.z.square().sum().backward();  // implicit-function gradients for w and u
//! ```

mod host;
#[cfg(test)]
mod tests;

use crate::neural_ode::flat_theta;
use crate::neural_ode::module_dynamics::{Element, host};
use crate::neural_ode::node::{OdeCall, ode_node};
use burn::module::Module;
use burn::tensor::{DType, Tensor, TensorData};
use host::{DeqHost, ForwardMap};
use nodal_solve::fixed_point::{
    FixedPointError, FixedPointMethod, FixedPointOptions, FixedPointSolution, FixedPointStats, solve_fixed_point,
};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// The map of a deep equilibrium layer, `f(z, x)`, as a burn module: `z` is the state
/// `[batch, state_dim]`, `x` the input injection `[batch, input_dim]`; the result has `z`'s
/// shape. Rows must not interact (no batch norm).
pub trait DeqFunc: Module + Clone + Send + 'static {
    /// `f(z, x)` for every row.
    fn forward(&self, z: Tensor<2>, x: Tensor<2>) -> Tensor<2>;
}

/// How the backward pass obtains `g = dL/dz*` pulled back through the equilibrium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeqGradient {
    /// Exact: solve `g = J^T g + v` (implicit function theorem).
    Implicit,
    /// Inexact, Jacobian-free: `g = v` (as if `df/dz = 0`); one product, no solve.
    OneStep,
}

impl DeqGradient {
    /// The name used on the command line (`implicit`, `one-step`).
    pub fn name(self) -> &'static str {
        match self {
            DeqGradient::Implicit => "implicit",
            DeqGradient::OneStep => "one-step",
        }
    }
}

/// Solver and gradient settings of one mode (training or evaluation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeqSettings {
    /// The forward root solve.
    pub forward: FixedPointOptions,
    /// The backward linear fixed-point solve (ignored by [`DeqGradient::OneStep`]).
    pub backward: FixedPointOptions,
    /// Exact or one-step gradients.
    pub gradient: DeqGradient,
    /// Go on with the last iterate when a solve reaches its cap (common DEQ training practice;
    /// [`DeqStats`] reports the rows that missed), instead of returning
    /// [`DeqError::NotConverged`].
    pub accept_unconverged: bool,
}

impl Default for DeqSettings {
    /// Anderson (memory 5) both ways, `rtol = 1e-4`, 50 iterations, exact gradients, strict.
    fn default() -> Self {
        let opts = FixedPointOptions::new(FixedPointMethod::anderson());
        Self { forward: opts, backward: opts, gradient: DeqGradient::Implicit, accept_unconverged: false }
    }
}

impl DeqSettings {
    /// Set the forward and backward method.
    pub fn with_method(mut self, method: FixedPointMethod) -> Self {
        self.forward.method = method;
        self.backward.method = method;
        self
    }
    /// Set the forward and backward tolerances and caps.
    pub fn with_tol(mut self, rtol: f64, max_iter: usize) -> Self {
        self.forward = self.forward.with_tol(rtol, 0.0).with_max_iter(max_iter);
        self.backward = self.backward.with_tol(rtol, 0.0).with_max_iter(max_iter);
        self
    }
    /// Set the gradient.
    pub fn with_gradient(mut self, gradient: DeqGradient) -> Self {
        self.gradient = gradient;
        self
    }
    /// Go on with the last iterate at the cap (see [`DeqSettings::accept_unconverged`]).
    pub fn accepting_unconverged(mut self, yes: bool) -> Self {
        self.accept_unconverged = yes;
        self
    }
}

/// A fixed-point solve's statistics, as reported by the layer.
pub type DeqStats = FixedPointStats;

/// Why the layer produced no output (or no gradient).
#[derive(Debug, Clone, Error)]
pub enum DeqError {
    /// A solve reached its cap with rows above tolerance and the settings are strict. `last`
    /// holds every row's last iterate (forward: `[batch, state_dim]`; backward: the last `g`).
    #[error("the DEQ's {pass} solve did not converge: {source}")]
    NotConverged {
        /// `"forward"` or `"backward"`.
        pass: &'static str,
        /// The solver's error (its iterate is moved to `last`).
        source: FixedPointError,
        /// The last iterate.
        last: Tensor<2>,
    },
    /// The map returned NaN or infinity, or a setting is out of range.
    #[error("the DEQ's {pass} solve failed: {source}")]
    Solve {
        /// `"forward"` or `"backward"`.
        pass: &'static str,
        /// The solver's error.
        source: FixedPointError,
    },
    /// The injection does not fit the layer.
    #[error("bad DEQ input: {0}")]
    Shape(String),
}

/// What the backward pass did, once burn's backward has run through the layer: the backward
/// solve's statistics (empty for [`DeqGradient::OneStep`]) or its failure.
pub type DeqBackwardReport = Arc<Mutex<Option<Result<DeqStats, DeqError>>>>;

/// Output of [`Deq::forward`].
pub struct DeqOutput {
    /// The equilibrium `z*`, `[batch, state_dim]` (tracked under autodiff).
    pub z: Tensor<2>,
    /// The forward solve's work and residuals.
    pub stats: DeqStats,
    /// Filled in by burn's backward.
    pub backward: DeqBackwardReport,
}

impl DeqOutput {
    /// Backward statistics, `None` until burn's backward has run.
    pub fn backward_stats(&self) -> Option<Result<DeqStats, DeqError>> {
        self.backward.lock().ok().and_then(|g| g.clone())
    }
}

/// A deep equilibrium layer. See the module docs.
#[derive(Module, Debug)]
pub struct Deq<M: DeqFunc> {
    /// The map `f(z, x)`.
    pub func: M,
    /// Width of the state `z`.
    #[module(skip)]
    pub state_dim: usize,
    /// Settings when the input is on an autodiff device.
    #[module(skip)]
    pub train: DeqSettings,
    /// Settings for plain (inference) inputs.
    #[module(skip)]
    pub eval: DeqSettings,
}

/// Split a solver error into the layer's error, moving the last iterate into a tensor.
pub(crate) fn layer_error<T: Element>(
    pass: &'static str,
    e: FixedPointError<T>,
    shape: [usize; 2],
    device: &burn::tensor::Device,
) -> DeqError {
    let mut last = None;
    let source = e.map_last(|s: FixedPointSolution<T>| {
        last = Some(s.z);
        FixedPointSolution { z: Vec::new(), stats: s.stats }
    });
    match (source, last) {
        (source @ FixedPointError::NotConverged { .. }, Some(z)) => {
            DeqError::NotConverged { pass, source, last: Tensor::from_data(TensorData::new(z, shape), (device, T::BURN)) }
        }
        (source, _) => DeqError::Solve { pass, source },
    }
}

/// Run a fixed-point solve under `settings`' policy for the cap.
pub(crate) fn solve_with_policy<T: Element, F: nodal_solve::fixed_point::RowMap<T>>(
    map: &mut F,
    z0: &[T],
    dim: usize,
    opts: &FixedPointOptions,
    accept_unconverged: bool,
) -> Result<FixedPointSolution<T>, FixedPointError<T>> {
    match solve_fixed_point(map, z0, dim, opts) {
        Err(FixedPointError::NotConverged { last, .. }) if accept_unconverged => Ok(*last),
        other => other,
    }
}

impl<M: DeqFunc> Deq<M> {
    /// A layer with state width `state_dim` and training and evaluation settings.
    pub fn new(func: M, state_dim: usize, train: DeqSettings, eval: DeqSettings) -> Self {
        Self { func, state_dim, train, eval }
    }

    /// The equilibrium for the injection `x` (`[batch, input_dim]`). Training settings apply
    /// when `x` is on an autodiff device (even if `x` itself needs no gradient: the parameters
    /// do), evaluation settings otherwise.
    pub fn forward(&self, x: Tensor<2>) -> Result<DeqOutput, DeqError> {
        if x.dtype() == DType::F64 { self.forward_typed::<f64>(x) } else { self.forward_typed::<f32>(x) }
    }

    fn forward_typed<T: Element>(&self, x: Tensor<2>) -> Result<DeqOutput, DeqError> {
        let tracked = x.is_autodiff();
        let settings = if tracked { self.train } else { self.eval };
        let [b, _] = x.dims();
        let dz = self.state_dim;
        if b == 0 || dz == 0 {
            return Err(DeqError::Shape(format!("batch {b} and state width {dz} must both be positive")));
        }
        let device = x.device();
        let plain_device = device.clone().without_autodiff();
        let x_host: Vec<T> = host::<T, 2>(x.clone());
        let x_plain = Tensor::<2>::from_data(TensorData::new(x_host, x.dims()), (&plain_device, T::BURN));
        let plain = self.func.valid();
        let mut map = ForwardMap { func: &plain, x: &x_plain, dim: dz, batch: b };
        let z0 = vec![T::ZERO; b * dz];
        let sol = solve_with_policy(&mut map, &z0, dz, &settings.forward, settings.accept_unconverged)
            .map_err(|e| layer_error("forward", e, [b, dz], &device))?;
        let report: DeqBackwardReport = Arc::new(Mutex::new(None));
        let z = if tracked {
            let theta = flat_theta(&self.func, &device, T::BURN);
            let n_theta = theta.dims()[0];
            let host = DeqHost { plain, x: x_plain, zstar: sol.z, dz, settings, n_theta, report: report.clone() };
            ode_node(x, theta, OdeCall(Arc::new(Mutex::new(host)))).reshape([b, dz])
        } else {
            Tensor::<2>::from_data(TensorData::new(sol.z, [b, dz]), (&device, T::BURN))
        };
        Ok(DeqOutput { z, stats: sol.stats, backward: report })
    }

    /// The same map iterated `iterations` times from `z = 0` on burn's graph: a weight-tied
    /// network of that depth, differentiated by ordinary backprop (memory grows with the depth).
    pub fn forward_unrolled(&self, x: Tensor<2>, iterations: usize) -> Tensor<2> {
        let [b, _] = x.dims();
        let mut z = Tensor::<2>::zeros([b, self.state_dim], (&x.device(), x.dtype()));
        for _ in 0..iterations {
            z = self.func.forward(z, x.clone());
        }
        z
    }
}
