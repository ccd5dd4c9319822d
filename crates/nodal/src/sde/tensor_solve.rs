//! Fixed-step SDE solves on burn tensors, differentiated by burn's autodiff.
//!
//! The solver core ([`nodal_solve::sde`]) steps slices with hand-written or per-step
//! vector-Jacobian products. Models whose terms read other tensors of the autodiff graph (the
//! posterior drift of a latent SDE reads an encoder's context, whose gradients must reach the
//! encoder) are easier to train by differentiating the unrolled solve itself
//! (discretise-then-optimise): every step here is a handful of tensor operations on `[rows, dim]`
//! states, so a backward pass through the returned states gives the exact gradient of the
//! discretised solution with respect to `y0`, every module parameter and every tensor the terms
//! read. Memory grows with the number of steps, as for backprop through an ODE solver.
//!
//! Noise is diagonal: `g(t, y)` has the shape of `y` and multiplies `dW` elementwise. Increments
//! come from any [`BrownianPath`] (a seeded path with O(1) memory, or stored increments), so the
//! same path gives the same sample as the solver core. Supported step formulas (names as in
//! [`Scheme`]):
//!
//! - `euler_maruyama` (Ito, strong order 1/2): `y' = y + f h + g ΔW`;
//! - `heun` (Stratonovich, order 1 for commutative noise): predictor `ŷ = y + f h + g ΔW`, then
//!   `y' = y + (f + f(ŷ)) h / 2 + (g + g(ŷ)) ΔW / 2`;
//! - `midpoint` (Stratonovich): `ŷ = y + f h / 2 + g ΔW / 2`, `y' = y + f(ŷ) h + g(ŷ) ΔW`
//!   (Kloeden & Platen 1992, §10–11; Burrage, Burrage & Tian 2004).

use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal_solve::sde::{BrownianPath, Scheme, SdeError, SdeSteps};

/// Drift and diagonal diffusion of `dy = f(t, y) dt + g(t, y) dW` on `[rows, dim]` tensors.
pub trait TensorSdeTerms {
    /// `(f(t, y), g(t, y))`, both of `y`'s shape. One call gives both so that models can share
    /// work between them (a latent SDE's KL integrand needs `f`, the prior drift and `g` at once).
    fn drift_diffusion(&self, t: f64, y: Tensor<2>) -> (Tensor<2>, Tensor<2>);
}

/// The step formulas [`sde_solve_tensor`] implements.
pub const TENSOR_SCHEMES: [Scheme; 3] = [Scheme::EulerMaruyama, Scheme::Heun, Scheme::Midpoint];

/// The states after `out_steps[j]` steps of `scheme` on `grid` from `y0` (`[rows, dim]`),
/// driven by `path` (`rows x dim` channels). `out_steps` must be strictly increasing, each in
/// `1..=grid.steps()`. The states stay in `y0`'s autodiff graph.
///
/// Errors (typed, no panics): a scheme other than [`TENSOR_SCHEMES`], a path of another shape
/// or span, bad output steps, and a non-finite state at an output step (reported with its time,
/// step and step size).
pub fn sde_solve_tensor<T: TensorSdeTerms + ?Sized>(
    terms: &T,
    path: &mut dyn BrownianPath<f64>,
    scheme: Scheme,
    grid: &dyn SdeSteps,
    y0: Tensor<2>,
    out_steps: &[usize],
) -> Result<Vec<Tensor<2>>, SdeError> {
    grid.validate()?;
    if !TENSOR_SCHEMES.contains(&scheme) {
        let names: Vec<&str> = TENSOR_SCHEMES.iter().map(|s| s.name()).collect();
        return Err(SdeError::Unsupported(format!(
            "scheme {} on burn tensors: use {} (the solver core has every scheme)",
            scheme.name(),
            names.join(", ")
        )));
    }
    let [rows, dim] = y0.dims();
    if path.shape() != (rows, dim) {
        return Err(SdeError::Shape(format!(
            "the Brownian path has {:?} (rows, channels), the state is [{rows}, {dim}] (diagonal noise needs one channel per component)",
            path.shape()
        )));
    }
    if out_steps.is_empty() || out_steps[0] == 0 || out_steps.windows(2).any(|w| w[1] <= w[0]) || *out_steps.last().unwrap() > grid.steps()
    {
        return Err(SdeError::InvalidArgument(format!(
            "output steps must be strictly increasing within 1..={} (got {out_steps:?})",
            grid.steps()
        )));
    }
    let (device, dtype) = (y0.device(), y0.dtype());
    let mut dw = vec![0.0f64; rows * dim];
    let mut y = y0;
    let mut ys = Vec::with_capacity(out_steps.len());
    let mut next = 0;
    for k in 0..*out_steps.last().unwrap() {
        let (t, h) = (grid.time(k), grid.h(k));
        path.increment(t, t + h, &mut dw)?;
        let dw_t = increment_tensor(&dw, rows, dim, &device, dtype);
        y = step(terms, scheme, t, h, y, dw_t);
        if out_steps[next] == k + 1 {
            check_finite(&y, t + h, k + 1, h)?;
            ys.push(y.clone());
            next += 1;
        }
    }
    Ok(ys)
}

/// One step of `scheme` from `(t, y)` over `h` with increment `dw`.
fn step<T: TensorSdeTerms + ?Sized>(terms: &T, scheme: Scheme, t: f64, h: f64, y: Tensor<2>, dw: Tensor<2>) -> Tensor<2> {
    let (f, g) = terms.drift_diffusion(t, y.clone());
    match scheme {
        Scheme::Heun => {
            let pred = y.clone() + f.clone().mul_scalar(h) + g.clone() * dw.clone();
            let (fp, gp) = terms.drift_diffusion(t + h, pred);
            y + (f + fp).mul_scalar(0.5 * h) + (g + gp) * dw.mul_scalar(0.5)
        }
        Scheme::Midpoint => {
            let mid = y.clone() + f.mul_scalar(0.5 * h) + g * dw.clone().mul_scalar(0.5);
            let (fm, gm) = terms.drift_diffusion(t + 0.5 * h, mid);
            y + fm.mul_scalar(h) + gm * dw
        }
        // Euler-Maruyama (the only other scheme admitted by the caller).
        _ => y + f.mul_scalar(h) + g * dw,
    }
}

/// Increments as a tensor of the state's element type on its device (constants of the graph).
fn increment_tensor(dw: &[f64], rows: usize, dim: usize, device: &Device, dtype: DType) -> Tensor<2> {
    match dtype {
        DType::F32 => {
            Tensor::<2>::from_data(TensorData::new(dw.iter().map(|&v| v as f32).collect::<Vec<f32>>(), [rows, dim]), (device, DType::F32))
        }
        DType::F64 => Tensor::<2>::from_data(TensorData::new(dw.to_vec(), [rows, dim]), (device, DType::F64)),
        _ => Tensor::<2>::from_data(TensorData::new(dw.to_vec(), [rows, dim]), (device, DType::F64)).cast(dtype),
    }
}

fn check_finite(y: &Tensor<2>, t: f64, step: usize, dt: f64) -> Result<(), SdeError> {
    // The sum is finite exactly when every entry is (or the state is so large that it overflows,
    // a blow-up as well); one scalar crosses from the device.
    let sum = y.clone().detach().sum().into_scalar::<f64>();
    if sum.is_finite() { Ok(()) } else { Err(SdeError::NonFinite { t, step, dt }) }
}
