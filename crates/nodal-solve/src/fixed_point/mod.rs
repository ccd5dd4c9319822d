//! Fixed points `z* = f(z*)` of maps over a batch of independent rows: the forward and backward
//! solves of deep equilibrium models (Bai et al. 2019, "Deep Equilibrium Models").
//!
//! Every row of the batch is its own problem with its own iterate, history and stopping test;
//! a row that has converged leaves the batch, so later calls of the map see only the rows still
//! working (the map must treat rows independently: group or layer norm, not batch norm). Three
//! update rules, each in its own file:
//!
//! - [`FixedPointMethod::Picard`] ([`picard`]): `z <- (1 - beta) z + beta f(z)`, linear
//!   convergence at the map's contraction rate;
//! - [`FixedPointMethod::Anderson`] ([`anderson`]): type-II Anderson acceleration over the last
//!   `memory` iterates (Anderson 1965; Walker and Ni 2011);
//! - [`FixedPointMethod::Broyden`] ([`broyden`]): limited-memory "good" Broyden on
//!   `g(z) = f(z) - z = 0`, inverse Jacobian `-I + sum u v^T` (Broyden 1965).
//!
//! A row has converged when `rms(f(z) - z) <= atol + rtol * rms(f(z))`; it then returns `f(z)`.
//! Running out of iterations is [`FixedPointError::NotConverged`], which keeps the last iterate
//! of every row (a DEQ in training may choose to go on with it); a non-finite value of the map
//! is [`FixedPointError::NonFinite`].
//!
//! ```
//! use nodal_solve::fixed_point::{solve_fixed_point, FixedPointMethod, FixedPointOptions, FnRowMap};
//! // z = cos(z): the Dottie number, 0.739085133215...
//! let mut f = FnRowMap(|_rows: &[usize], z: &[f64], out: &mut [f64]| {
//!     for (o, v) in out.iter_mut().zip(z) { *o = v.cos() }
//! });
//! let opts = FixedPointOptions::new(FixedPointMethod::anderson()).with_tol(1e-12, 1e-14);
//! let sol = solve_fixed_point(&mut f, &[1.0], 1, &opts).unwrap();
//! assert!((sol.z[0] - 0.7390851332151607).abs() < 1e-11);
//! ```

pub mod anderson;
pub mod broyden;
pub mod picard;
mod small_solve;

use crate::Scalar;
use anderson::AndersonRow;
use broyden::BroydenRow;
use picard::PicardRow;
use thiserror::Error;

/// A map `f` applied to some rows of a batch.
pub trait RowMap<T> {
    /// Write `f(z)` for the rows listed in `rows` (indices into the batch, ascending): `z` and
    /// `out` hold those rows one after another, each as wide as the problem's `dim`.
    fn apply(&mut self, rows: &[usize], z: &[T], out: &mut [T]);
}

/// A closure as a [`RowMap`].
pub struct FnRowMap<F>(pub F);

impl<T, F: FnMut(&[usize], &[T], &mut [T])> RowMap<T> for FnRowMap<F> {
    fn apply(&mut self, rows: &[usize], z: &[T], out: &mut [T]) {
        (self.0)(rows, z, out)
    }
}

/// How the next iterate is formed from the history of iterates and their images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FixedPointMethod {
    /// Plain (damped) fixed-point iteration `z <- (1 - damping) z + damping f(z)`.
    Picard {
        /// `damping` in `(0, 1]`; 1 is undamped.
        damping: f64,
    },
    /// Anderson acceleration: the next iterate mixes the last `memory` iterates with the
    /// weights that minimise the norm of the combined residual, subject to summing to one.
    Anderson {
        /// Iterates kept (`m`, at least 1; 1 is Picard).
        memory: usize,
        /// Mixing `beta` in `(0, 1]` between images and iterates.
        damping: f64,
        /// Tikhonov term added to the residuals' Gram matrix, relative to its largest diagonal
        /// entry.
        regularisation: f64,
    },
    /// Limited-memory good Broyden on `f(z) - z = 0`: at most `memory` rank-one updates of the
    /// inverse Jacobian, the oldest replaced first.
    Broyden {
        /// Rank-one updates kept (at least 1).
        memory: usize,
    },
}

impl FixedPointMethod {
    /// Undamped Picard iteration.
    pub fn picard() -> Self {
        FixedPointMethod::Picard { damping: 1.0 }
    }
    /// Anderson with memory 5, no damping, regularisation 1e-10 (common DEQ settings).
    pub fn anderson() -> Self {
        FixedPointMethod::Anderson { memory: 5, damping: 1.0, regularisation: 1e-10 }
    }
    /// Broyden with 30 updates kept (then a restart).
    pub fn broyden() -> Self {
        FixedPointMethod::Broyden { memory: 30 }
    }
    /// The name used on the command line and in files (`picard`, `anderson`, `broyden`).
    pub fn name(&self) -> &'static str {
        match self {
            FixedPointMethod::Picard { .. } => "picard",
            FixedPointMethod::Anderson { .. } => "anderson",
            FixedPointMethod::Broyden { .. } => "broyden",
        }
    }
    /// The default settings of the method called `name`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "picard" => Some(Self::picard()),
            "anderson" => Some(Self::anderson()),
            "broyden" => Some(Self::broyden()),
            _ => None,
        }
    }
}

/// Method, tolerances and iteration cap of a fixed-point solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedPointOptions {
    /// The update rule.
    pub method: FixedPointMethod,
    /// Relative tolerance on the residual (against `rms(f(z))`).
    pub rtol: f64,
    /// Absolute tolerance on the residual's RMS.
    pub atol: f64,
    /// Evaluations of the map allowed per row (at least 1).
    pub max_iter: usize,
}

impl FixedPointOptions {
    /// `method` at `rtol = 1e-4`, `atol = 0`, at most 50 evaluations per row.
    pub fn new(method: FixedPointMethod) -> Self {
        Self { method, rtol: 1e-4, atol: 0.0, max_iter: 50 }
    }
    /// Set the tolerances.
    pub fn with_tol(mut self, rtol: f64, atol: f64) -> Self {
        (self.rtol, self.atol) = (rtol, atol);
        self
    }
    /// Set the iteration cap.
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Checks the settings; the message names the offending field.
    pub fn validate<T>(&self) -> Result<(), FixedPointError<T>> {
        let bad = |field: &'static str, reason: String| Err(FixedPointError::BadOptions { field, reason });
        if !(self.rtol >= 0.0 && self.rtol.is_finite()) {
            return bad("rtol", format!("must be finite and >= 0, got {}", self.rtol));
        }
        if !(self.atol >= 0.0 && self.atol.is_finite()) {
            return bad("atol", format!("must be finite and >= 0, got {}", self.atol));
        }
        if self.max_iter == 0 {
            return bad("max_iter", "must be at least 1".into());
        }
        let damping_ok = |d: f64| d > 0.0 && d <= 1.0;
        match self.method {
            FixedPointMethod::Picard { damping } if !damping_ok(damping) => bad("damping", format!("must lie in (0, 1], got {damping}")),
            FixedPointMethod::Anderson { damping, .. } if !damping_ok(damping) => {
                bad("damping", format!("must lie in (0, 1], got {damping}"))
            }
            FixedPointMethod::Anderson { memory: 0, .. } | FixedPointMethod::Broyden { memory: 0 } => {
                bad("memory", "must be at least 1".into())
            }
            FixedPointMethod::Anderson { regularisation, .. } if !(regularisation >= 0.0 && regularisation.is_finite()) => {
                bad("regularisation", format!("must be finite and >= 0, got {regularisation}"))
            }
            _ => Ok(()),
        }
    }
}

/// What a fixed-point solve did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixedPointStats {
    /// Calls of the map (each on the rows still working).
    pub calls: usize,
    /// Row evaluations in all calls together (at most `calls * rows`).
    pub row_evaluations: usize,
    /// Evaluations of each row.
    pub row_iterations: Vec<usize>,
    /// Each row's relative residual `rms(f(z) - z) / rms(f(z))` at its last evaluation.
    pub row_residual: Vec<f64>,
    /// Rows that met the tolerance.
    pub converged: usize,
}

impl FixedPointStats {
    /// The largest number of evaluations of any row (the solve's depth).
    pub fn iterations(&self) -> usize {
        self.row_iterations.iter().copied().max().unwrap_or(0)
    }
    /// Mean evaluations per row.
    pub fn mean_iterations(&self) -> f64 {
        self.row_evaluations as f64 / self.row_iterations.len().max(1) as f64
    }
    /// The largest relative residual of any row.
    pub fn max_residual(&self) -> f64 {
        self.row_residual.iter().copied().fold(0.0, f64::max)
    }
}

/// The fixed point of every row.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedPointSolution<T> {
    /// `f(z)` at each row's last iterate, row after row (`rows * dim`).
    pub z: Vec<T>,
    /// Work and residuals.
    pub stats: FixedPointStats,
}

/// Why a fixed-point solve did not return a solution.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FixedPointError<T = f64> {
    /// Some rows still missed the tolerance after `max_iter` evaluations. `last` holds every
    /// row's last image (converged rows their fixed point) and the statistics.
    #[error(
        "{unconverged} of {rows} rows did not converge in {max_iter} iterations (largest relative residual {worst:.3e}, tolerance rtol {rtol:e}, atol {atol:e})"
    )]
    NotConverged {
        /// Rows that missed the tolerance.
        unconverged: usize,
        /// Rows in the batch.
        rows: usize,
        /// The cap.
        max_iter: usize,
        /// The largest relative residual.
        worst: f64,
        /// Relative tolerance asked for.
        rtol: f64,
        /// Absolute tolerance asked for.
        atol: f64,
        /// The last iterate of every row.
        last: Box<FixedPointSolution<T>>,
    },
    /// The map returned NaN or infinity.
    #[error("the map returned a non-finite value in row {row} at iteration {iteration}")]
    NonFinite {
        /// The offending row.
        row: usize,
        /// Its evaluation count when it happened.
        iteration: usize,
    },
    /// An option is out of range, or the initial state does not fit the batch.
    #[error("bad fixed-point setting `{field}`: {reason}")]
    BadOptions {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl<T> FixedPointError<T> {
    /// The same error with the last iterate converted (or dropped into `U`'s form).
    pub fn map_last<U>(self, f: impl FnOnce(FixedPointSolution<T>) -> FixedPointSolution<U>) -> FixedPointError<U> {
        match self {
            FixedPointError::NotConverged { unconverged, rows, max_iter, worst, rtol, atol, last } => {
                FixedPointError::NotConverged { unconverged, rows, max_iter, worst, rtol, atol, last: Box::new(f(*last)) }
            }
            FixedPointError::NonFinite { row, iteration } => FixedPointError::NonFinite { row, iteration },
            FixedPointError::BadOptions { field, reason } => FixedPointError::BadOptions { field, reason },
        }
    }
}

/// One row's update rule: given the row's iterate `z` and its image `fz = f(z)`, overwrite `z`
/// with the next iterate.
pub(crate) trait RowUpdate<T> {
    fn next(&mut self, z: &mut [T], fz: &[T]);
}

/// The per-row state of the chosen method.
enum Update<T> {
    Picard(PicardRow),
    Anderson(AndersonRow<T>),
    Broyden(BroydenRow<T>),
}

impl<T: Scalar> Update<T> {
    fn new(method: FixedPointMethod, dim: usize) -> Self {
        match method {
            FixedPointMethod::Picard { damping } => Update::Picard(PicardRow { damping }),
            FixedPointMethod::Anderson { memory, damping, regularisation } => {
                Update::Anderson(AndersonRow::new(dim, memory, damping, regularisation))
            }
            FixedPointMethod::Broyden { memory } => Update::Broyden(BroydenRow::new(dim, memory)),
        }
    }
    fn next(&mut self, z: &mut [T], fz: &[T]) {
        match self {
            Update::Picard(u) => u.next(z, fz),
            Update::Anderson(u) => u.next(z, fz),
            Update::Broyden(u) => u.next(z, fz),
        }
    }
}

/// Euclidean dot product accumulated in `f64`.
pub(crate) fn dot<T: Scalar>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x.to_f64() * y.to_f64()).sum()
}

/// Solve `z = f(z)` for every row of `z0` (`rows * dim` values, row after row). See the module
/// docs for the stopping test and the failures.
pub fn solve_fixed_point<T: Scalar, M: RowMap<T>>(
    map: &mut M,
    z0: &[T],
    dim: usize,
    opts: &FixedPointOptions,
) -> Result<FixedPointSolution<T>, FixedPointError<T>> {
    opts.validate()?;
    if dim == 0 || z0.len() % dim != 0 {
        return Err(FixedPointError::BadOptions {
            field: "z0",
            reason: format!("{} values do not make whole rows of width {dim}", z0.len()),
        });
    }
    let rows = z0.len() / dim;
    let mut z = z0.to_vec();
    let mut out = z0.to_vec();
    let mut stats =
        FixedPointStats { row_iterations: vec![0; rows], row_residual: vec![f64::INFINITY; rows], ..FixedPointStats::default() };
    if let Some(i) = z0.iter().position(|v| !v.is_finite()) {
        return Err(FixedPointError::NonFinite { row: i / dim, iteration: 0 });
    }
    let mut updates: Vec<Update<T>> = (0..rows).map(|_| Update::new(opts.method, dim)).collect();
    let mut active: Vec<usize> = (0..rows).collect();
    let (mut zbuf, mut fbuf) = (Vec::with_capacity(z.len()), vec![T::ZERO; z.len()]);
    let rms = |s: f64| (s / dim as f64).sqrt();
    while !active.is_empty() {
        zbuf.clear();
        for &r in &active {
            zbuf.extend_from_slice(&z[r * dim..(r + 1) * dim]);
        }
        let fz = &mut fbuf[..zbuf.len()];
        map.apply(&active, &zbuf, fz);
        stats.calls += 1;
        stats.row_evaluations += active.len();
        let mut still = Vec::with_capacity(active.len());
        for (j, &r) in active.iter().enumerate() {
            let (zr, fr) = (&mut z[r * dim..(r + 1) * dim], &fz[j * dim..(j + 1) * dim]);
            stats.row_iterations[r] += 1;
            if fr.iter().any(|v| !v.is_finite()) {
                return Err(FixedPointError::NonFinite { row: r, iteration: stats.row_iterations[r] });
            }
            let (res2, f2) = zr.iter().zip(fr).fold((0.0, 0.0), |(a, b), (x, y)| {
                let (x, y) = (x.to_f64(), y.to_f64());
                (a + (y - x) * (y - x), b + y * y)
            });
            let (res, fnorm) = (rms(res2), rms(f2));
            stats.row_residual[r] = if fnorm > 0.0 { res / fnorm } else { res };
            if res <= opts.atol + opts.rtol * fnorm {
                out[r * dim..(r + 1) * dim].copy_from_slice(fr);
                stats.converged += 1;
            } else if stats.row_iterations[r] >= opts.max_iter {
                out[r * dim..(r + 1) * dim].copy_from_slice(fr);
            } else {
                updates[r].next(zr, fr);
                still.push(r);
            }
        }
        active = still;
    }
    let sol = FixedPointSolution { z: out, stats };
    if sol.stats.converged < rows {
        return Err(FixedPointError::NotConverged {
            unconverged: rows - sol.stats.converged,
            rows,
            max_iter: opts.max_iter,
            worst: sol.stats.max_residual(),
            rtol: opts.rtol,
            atol: opts.atol,
            last: Box::new(sol),
        });
    }
    Ok(sol)
}

#[cfg(test)]
mod tests;
