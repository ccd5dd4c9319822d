//! Fixed-step SDE solves: the grid, the loop, and what it returns.

use super::brownian::BrownianPath;
use super::error::SdeError;
use super::scheme::Scheme;
use super::step::{StepKernel, check_scheme};
use super::terms::SdeTerms;
use crate::scalar::Scalar;

/// The step boundaries of a solve: `time(0) < time(1) < ... < time(steps())`.
///
/// [`SdeGrid`] is the uniform grid of fixed-step solves; [`StepTimes`] any increasing list (the
/// accepted steps of an adaptive solve, replayed for gradients).
pub trait SdeSteps {
    /// Number of steps.
    fn steps(&self) -> usize;
    /// Boundary `k` (`0..=steps()`).
    fn time(&self, k: usize) -> f64;
    /// Size of step `k`.
    fn h(&self, k: usize) -> f64 {
        self.time(k + 1) - self.time(k)
    }
    /// A typed error unless the boundaries are finite and strictly increasing.
    fn validate(&self) -> Result<(), SdeError>;
}

/// Step boundaries given as a list (strictly increasing, finite, at least two).
#[derive(Debug, Clone, PartialEq)]
pub struct StepTimes(pub Vec<f64>);

impl SdeSteps for StepTimes {
    fn steps(&self) -> usize {
        self.0.len().saturating_sub(1)
    }
    fn time(&self, k: usize) -> f64 {
        self.0[k]
    }
    fn validate(&self) -> Result<(), SdeError> {
        if self.0.len() < 2 || self.0.iter().any(|t| !t.is_finite()) || self.0.windows(2).any(|w| w[1] <= w[0]) {
            return Err(SdeError::InvalidArgument("step times must be at least two finite, strictly increasing values".into()));
        }
        Ok(())
    }
}

/// A uniform time grid `t_k = t0 + k dt`, `k = 0..=steps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SdeGrid {
    /// Start time.
    pub t0: f64,
    /// Step size (positive).
    pub dt: f64,
    /// Number of steps.
    pub steps: usize,
}

impl SdeGrid {
    /// End time.
    pub fn t1(&self) -> f64 {
        self.t0 + self.steps as f64 * self.dt
    }
}

impl SdeSteps for SdeGrid {
    fn steps(&self) -> usize {
        self.steps
    }
    fn time(&self, k: usize) -> f64 {
        self.t0 + k as f64 * self.dt
    }
    fn h(&self, _k: usize) -> f64 {
        self.dt
    }
    fn validate(&self) -> Result<(), SdeError> {
        if !(self.t0.is_finite() && self.dt.is_finite() && self.dt > 0.0) {
            return Err(SdeError::InvalidArgument(format!("SDE grid needs finite t0 and dt > 0 (got t0 = {}, dt = {})", self.t0, self.dt)));
        }
        if self.steps == 0 {
            return Err(SdeError::InvalidArgument("SDE grid needs at least one step".into()));
        }
        Ok(())
    }
}

/// Counts of one solve or gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SdeStats {
    /// Steps taken (forward, including recomputation).
    pub steps: usize,
    /// Steps taken backwards (gradients).
    pub backward_steps: usize,
    /// States kept in memory at the peak (per batch, each `rows x dim`).
    pub stored_states: usize,
}

/// The states at the requested output steps.
#[derive(Debug, Clone)]
pub struct SdeSolution<T> {
    /// `ys[j]` is the state after `out_steps[j]` steps (`[rows * dim]`).
    pub ys: Vec<Vec<T>>,
    /// Counts.
    pub stats: SdeStats,
}

/// Check shapes of `y0`, the path and the output steps against the terms and the grid;
/// returns the number of rows.
pub(crate) fn check_problem<T: Scalar>(
    terms: &dyn SdeTerms<T>,
    path: &dyn BrownianPath<T>,
    scheme: Scheme,
    grid: &dyn SdeSteps,
    y0: &[T],
    out_steps: &[usize],
) -> Result<usize, SdeError> {
    grid.validate()?;
    check_scheme(scheme, terms)?;
    let d = terms.dim();
    if d == 0 || y0.is_empty() || y0.len() % d != 0 {
        return Err(SdeError::Shape(format!("y0 has {} entries, not a whole number of rows of dim {d}", y0.len())));
    }
    let rows = y0.len() / d;
    let (prows, pch) = path.shape();
    if prows != rows || pch != terms.channels() {
        return Err(SdeError::Shape(format!(
            "Brownian path is {prows} rows x {pch} channels; the state has {rows} rows and the diffusion {} channels",
            terms.channels()
        )));
    }
    if let Some(i) = y0.iter().position(|v| !v.is_finite()) {
        return Err(SdeError::InvalidArgument(format!("y0 entry {i} is not finite")));
    }
    if out_steps.is_empty() {
        return Err(SdeError::InvalidArgument("no output steps requested".into()));
    }
    for w in out_steps.windows(2) {
        if w[1] <= w[0] {
            return Err(SdeError::InvalidArgument(format!("output steps must increase strictly (got {} then {})", w[0], w[1])));
        }
    }
    if *out_steps.last().unwrap() > grid.steps() {
        return Err(SdeError::InvalidArgument(format!(
            "output step {} is beyond the grid's {} steps",
            out_steps.last().unwrap(),
            grid.steps()
        )));
    }
    Ok(rows)
}

/// Per-step Brownian input: the increment and, for SRA1, the time integral.
pub(crate) struct Noise<T> {
    pub w: Vec<T>,
    pub k: Vec<T>,
    needs_k: bool,
}

impl<T: Scalar> Noise<T> {
    pub fn new(scheme: Scheme, entries: usize) -> Self {
        let needs_k = matches!(scheme, Scheme::Sra1 | Scheme::Sri);
        Self { w: vec![T::ZERO; entries], k: vec![T::ZERO; if needs_k { entries } else { 0 }], needs_k }
    }

    /// Fill with the path over step `k` of the grid.
    pub fn fill(&mut self, path: &mut dyn BrownianPath<T>, grid: &dyn SdeSteps, step: usize) -> Result<(), SdeError> {
        let (a, b) = (grid.time(step), grid.time(step + 1));
        if self.needs_k { path.increment_and_time_integral(a, b, &mut self.w, &mut self.k) } else { path.increment(a, b, &mut self.w) }
    }

    pub fn k(&self) -> Option<&[T]> {
        if self.needs_k { Some(&self.k) } else { None }
    }
}

pub(crate) fn check_finite<T: Scalar>(y: &[T], grid: &dyn SdeSteps, step: usize) -> Result<(), SdeError> {
    if y.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(SdeError::NonFinite { t: grid.time(step), step, dt: grid.h(step.saturating_sub(1)) })
    }
}

/// The forward loop every solve and gradient shares: steps `y` (and `z`, reversible Heun's
/// second state) in place through the first `out_steps.last()` steps, calling `before_step(k, y,
/// z)` before step `k` (where gradients keep checkpoints), and returns the outputs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Scalar>(
    terms: &mut dyn SdeTerms<T>,
    path: &mut dyn BrownianPath<T>,
    grid: &dyn SdeSteps,
    kernel: &mut StepKernel<T>,
    noise: &mut Noise<T>,
    y: &mut [T],
    z: &mut [T],
    out_steps: &[usize],
    before_step: &mut dyn FnMut(usize, &[T], &[T]),
) -> Result<Vec<Vec<T>>, SdeError> {
    let mut ys = Vec::with_capacity(out_steps.len());
    let mut next = 0;
    if out_steps[0] == 0 {
        ys.push(y.to_vec());
        next = 1;
    }
    for k in 0..*out_steps.last().unwrap() {
        before_step(k, y, z);
        noise.fill(path, grid, k)?;
        kernel.step(terms, grid.time(k), grid.h(k), &noise.w, noise.k(), y, z)?;
        check_finite(y, grid, k + 1)?;
        if next < out_steps.len() && out_steps[next] == k + 1 {
            ys.push(y.to_vec());
            next += 1;
        }
    }
    Ok(ys)
}

/// Solve `dy = f dt + g dW` from `y0` on `grid` with `scheme`, driven by `path`; return the
/// states after each of `out_steps` steps (strictly increasing, `0` = `y0`).
pub fn sde_solve<T: Scalar>(
    terms: &mut dyn SdeTerms<T>,
    path: &mut dyn BrownianPath<T>,
    scheme: Scheme,
    grid: &dyn SdeSteps,
    y0: &[T],
    out_steps: &[usize],
) -> Result<SdeSolution<T>, SdeError> {
    let rows = check_problem(terms, path, scheme, grid, y0, out_steps)?;
    let mut kernel = StepKernel::new(scheme, y0.len());
    let mut noise = Noise::new(scheme, rows * terms.channels());
    let mut y = y0.to_vec();
    let mut z = if scheme == Scheme::ReversibleHeun { y0.to_vec() } else { Vec::new() };
    let ys = forward(terms, path, grid, &mut kernel, &mut noise, &mut y, &mut z, out_steps, &mut |_, _, _| {})?;
    let last = *out_steps.last().unwrap();
    Ok(SdeSolution { ys, stats: SdeStats { steps: last, backward_steps: 0, stored_states: 1 } })
}
