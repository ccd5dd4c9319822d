//! Gradients of a loss of SDE outputs with respect to `y0` and the parameters.
//!
//! - [`SdeGradMethod::Backprop`]: discretise-then-optimise, the exact derivative of the
//!   computed solution. Keeps every step's start state (`steps` states), re-evaluates each
//!   step's stages in its backward step.
//! - [`SdeGradMethod::Checkpoint`]: the same numbers, keeping one state every `every` steps
//!   and recomputing each segment forward before its backward pass (memory `steps / every +
//!   every` states, one extra forward solve).
//! - [`SdeGradMethod::ReversibleAdjoint`]: reversible Heun only. The scheme is algebraically
//!   reversible, so the backward pass recovers each step's start from its end and needs no
//!   stored states: O(1) memory and the discretise-then-optimise gradient up to the round-off
//!   of the reconstruction (Kidger et al. 2021).
//! - [`SdeGradMethod::ContinuousAdjoint`]: the stochastic adjoint of Li et al. (2020), see
//!   [`super::adjoint`]: O(1) memory, the gradient of the continuous SDE up to the
//!   discretisation error of the backward solve.

use super::adjoint::continuous_adjoint;
use super::brownian::BrownianPath;
use super::error::SdeError;
use super::scheme::Scheme;
use super::solve::{Noise, SdeStats, SdeSteps, check_problem, forward};
use super::step::StepKernel;
use super::terms::SdeTerms;
use crate::scalar::Scalar;

/// How gradients are computed. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdeGradMethod {
    /// Backpropagation through the steps (every start state kept).
    Backprop,
    /// Backpropagation with one stored state every `every` steps (`0`: about `sqrt(steps)`).
    Checkpoint {
        /// Steps per segment.
        every: usize,
    },
    /// Reversible Heun's exact O(1)-memory adjoint.
    ReversibleAdjoint,
    /// The continuous stochastic adjoint.
    ContinuousAdjoint,
}

/// Default limit on stored states, in bytes.
pub const DEFAULT_SDE_MAX_MEMORY: usize = 8 << 30;

/// Outputs and gradients.
#[derive(Debug, Clone)]
pub struct SdeGradient<T> {
    /// States at the output steps.
    pub ys: Vec<Vec<T>>,
    /// `dL / dy0`.
    pub y0: Vec<T>,
    /// `dL / dtheta` (the terms' flat parameter layout).
    pub params: Vec<T>,
    /// Counts.
    pub stats: SdeStats,
}

/// Gradients of a loss of the outputs: `cotangents(ys)` returns `dL / dys` (same shapes).
#[allow(clippy::too_many_arguments)]
pub fn sde_gradient<T: Scalar>(
    terms: &mut dyn SdeTerms<T>,
    path: &mut dyn BrownianPath<T>,
    scheme: Scheme,
    grid: &dyn SdeSteps,
    y0: &[T],
    out_steps: &[usize],
    method: SdeGradMethod,
    max_memory: usize,
    cotangents: &mut dyn FnMut(&[Vec<T>]) -> Vec<Vec<T>>,
) -> Result<SdeGradient<T>, SdeError> {
    let rows = check_problem(terms, path, scheme, grid, y0, out_steps)?;
    if scheme == Scheme::Sri {
        return Err(SdeError::Unsupported(
            "gradients through sri steps are not implemented (forward solves only); use milstein_ito or euler_maruyama".into(),
        ));
    }
    let n = y0.len();
    let last = *out_steps.last().unwrap();
    let pair = if scheme == Scheme::ReversibleHeun { 2 } else { 1 };
    let state_bytes = n * pair * std::mem::size_of::<T>();
    let every = match method {
        SdeGradMethod::Backprop => 1,
        SdeGradMethod::Checkpoint { every: 0 } => ((last as f64).sqrt().ceil() as usize).max(1),
        SdeGradMethod::Checkpoint { every } => every,
        SdeGradMethod::ReversibleAdjoint => {
            if scheme != Scheme::ReversibleHeun {
                return Err(SdeError::Unsupported(format!(
                    "the reversible adjoint needs the reversible_heun scheme (got {}); use backprop, checkpoint or adjoint",
                    scheme.name()
                )));
            }
            return reversible(terms, path, grid, y0, out_steps, rows, cotangents);
        }
        SdeGradMethod::ContinuousAdjoint => return continuous_adjoint(terms, path, scheme, grid, y0, out_steps, rows, cotangents),
    };
    let stored = last.div_ceil(every) + if every > 1 { every } else { 0 };
    let need = stored.saturating_mul(state_bytes);
    if need > max_memory {
        return Err(SdeError::MemoryLimit {
            what: "the states kept for the backward pass",
            need,
            limit: max_memory,
            hint: "use --grad checkpoint (or a larger checkpoint interval), or the O(1)-memory adjoint",
        });
    }
    let mut kernel = StepKernel::new(scheme, n);
    let mut noise = Noise::new(scheme, rows * terms.channels());
    // Forward: checkpoints at multiples of `every`, outputs.
    let mut checkpoints: Vec<(Vec<T>, Vec<T>)> = Vec::with_capacity(last.div_ceil(every));
    let mut y = y0.to_vec();
    let mut z = if pair == 2 { y0.to_vec() } else { Vec::new() };
    let mut keep = |k: usize, y: &[T], z: &[T]| {
        if k % every == 0 {
            checkpoints.push((y.to_vec(), z.to_vec()));
        }
    };
    let ys = forward(terms, path, grid, &mut kernel, &mut noise, &mut y, &mut z, out_steps, &mut keep)?;
    let ybar = cotangents(&ys);
    check_cotangents(&ybar, &ys)?;
    // Backward, segment by segment.
    let mut ay = vec![T::ZERO; n];
    let mut az = vec![T::ZERO; if pair == 2 { n } else { 0 }];
    let mut ap = vec![T::ZERO; terms.num_params()];
    let mut out_idx = out_steps.len();
    let mut segment: Vec<(Vec<T>, Vec<T>)> = Vec::new();
    let mut recomputed = 0;
    for (c, (cy, cz)) in checkpoints.iter().enumerate().rev() {
        let start = c * every;
        let end = (start + every).min(last);
        segment.clear();
        segment.push((cy.clone(), cz.clone()));
        if end - start > 1 {
            let (mut sy, mut sz) = (cy.clone(), cz.clone());
            kernel.reset();
            for k in start..end - 1 {
                noise.fill(path, grid, k)?;
                kernel.step(terms, grid.time(k), grid.h(k), &noise.w, noise.k(), &mut sy, &mut sz)?;
                segment.push((sy.clone(), sz.clone()));
                recomputed += 1;
            }
        }
        for k in (start..end).rev() {
            if out_idx > 0 && out_steps[out_idx - 1] == k + 1 {
                out_idx -= 1;
                for (a, b) in ay.iter_mut().zip(&ybar[out_idx]) {
                    *a += *b;
                }
            }
            noise.fill(path, grid, k)?;
            let (sy, sz) = &segment[k - start];
            kernel.step_back(terms, grid.time(k), grid.h(k), &noise.w, noise.k(), sy, sz, &mut ay, &mut az, &mut ap)?;
        }
    }
    if out_idx > 0 {
        // Output at step 0 (y0 itself).
        for (a, b) in ay.iter_mut().zip(&ybar[0]) {
            *a += *b;
        }
    }
    if pair == 2 {
        // z0 = y0.
        for (a, b) in ay.iter_mut().zip(&az) {
            *a += *b;
        }
    }
    let stats =
        SdeStats { steps: last + recomputed, backward_steps: last, stored_states: checkpoints.len() + if every > 1 { every } else { 0 } };
    Ok(SdeGradient { ys, y0: ay, params: ap, stats })
}

pub(crate) fn check_cotangents<T: Scalar>(ybar: &[Vec<T>], ys: &[Vec<T>]) -> Result<(), SdeError> {
    if ybar.len() != ys.len() || ybar.iter().zip(ys).any(|(a, b)| a.len() != b.len()) {
        return Err(SdeError::Shape("loss cotangents must have the shapes of the outputs".into()));
    }
    Ok(())
}

/// Reversible Heun's O(1)-memory adjoint: reconstruct each step's start and backpropagate
/// through it.
fn reversible<T: Scalar>(
    terms: &mut dyn SdeTerms<T>,
    path: &mut dyn BrownianPath<T>,
    grid: &dyn SdeSteps,
    y0: &[T],
    out_steps: &[usize],
    rows: usize,
    cotangents: &mut dyn FnMut(&[Vec<T>]) -> Vec<Vec<T>>,
) -> Result<SdeGradient<T>, SdeError> {
    let n = y0.len();
    let scheme = Scheme::ReversibleHeun;
    let mut kernel = StepKernel::new(scheme, n);
    let mut noise = Noise::new(scheme, rows * terms.channels());
    let (mut y, mut z) = (y0.to_vec(), y0.to_vec());
    let last = *out_steps.last().unwrap();
    let ys = forward(terms, path, grid, &mut kernel, &mut noise, &mut y, &mut z, out_steps, &mut |_, _, _| {})?;
    let ybar = cotangents(&ys);
    check_cotangents(&ybar, &ys)?;
    let mut ay = vec![T::ZERO; n];
    let mut az = vec![T::ZERO; n];
    let mut ap = vec![T::ZERO; terms.num_params()];
    let mut out_idx = out_steps.len();
    for k in (0..last).rev() {
        if out_idx > 0 && out_steps[out_idx - 1] == k + 1 {
            out_idx -= 1;
            for (a, b) in ay.iter_mut().zip(&ybar[out_idx]) {
                *a += *b;
            }
        }
        noise.fill(path, grid, k)?;
        kernel.unstep(terms, grid.time(k), grid.h(k), &noise.w, &mut y, &mut z);
        kernel.step_back(terms, grid.time(k), grid.h(k), &noise.w, None, &y, &z, &mut ay, &mut az, &mut ap)?;
    }
    if out_idx > 0 {
        for (a, b) in ay.iter_mut().zip(&ybar[0]) {
            *a += *b;
        }
    }
    for (a, b) in ay.iter_mut().zip(&az) {
        *a += *b;
    }
    Ok(SdeGradient { ys, y0: ay, params: ap, stats: SdeStats { steps: 2 * last, backward_steps: last, stored_states: 2 } })
}
