//! Per-sample solving: every row of a batch takes its own steps.
//!
//! With a batch solved as one "giant ODE" (the joint mode of [`crate::integrate`]) the hardest
//! row sets the step size for all rows, predictions depend on the rest of the batch, and one bad
//! row fails the whole solve. In per-sample mode each row has its own time, step size, error norm
//! (RMS over the row), accept/reject decision, output grid and status, and the same tableaus,
//! controllers and interpolants are used. Rows that have finished (or failed) leave the batch:
//! `f` is evaluated only on the rows still integrating, gathered into a contiguous block, so the
//! work follows the rows that need it. A row that fails reports its own typed error; its outputs
//! after the failure are NaN and the other rows finish normally.
//!
//! Gradients (all three methods) replay each row's own tape or run its own adjoint solve with
//! the joint-mode engine on that row alone, so a row's gradient equals the gradient of the same
//! row solved alone.

use crate::dynamics::VjpDynamics;
use crate::error::SolveError;
use crate::events::{NoEvents, solve_per_sample_with_events};
use crate::grad::{AdjointOptions, GradMethod, Gradients, gradients_with};
use crate::integrate::Record;
pub use crate::lanes::{FnRows, PrefixNorm, RowDynamics, RowNorm};
use crate::norm::RmsNorm;
use crate::options::SolveOptions;
use crate::scalar::Scalar;
use crate::solution::Tape;
use crate::stats::Stats;

/// Result of a per-sample solve.
#[derive(Debug, Clone)]
pub struct RowSolution<T> {
    /// Outputs `[times][batch * dim]`; a failed row holds NaN from its failure on.
    pub ys: Vec<Vec<T>>,
    /// `None` for rows that finished, the row's error otherwise.
    pub row_status: Vec<Option<SolveError>>,
    /// Work per row: `nfe` counts the evaluations that included the row.
    pub row_stats: Vec<Stats>,
    /// Batched calls of `f` (each on the rows still active).
    pub calls: usize,
    /// Total row-evaluations computed (the sum over calls of the rows evaluated).
    pub row_evaluations: usize,
    /// Per-row tapes when recorded (for gradients).
    pub tapes: Option<Vec<Tape<Vec<T>>>>,
}

/// Solve every row of `y0` (`[batch][dim]`, row-major) on its own output grid `ts[r]` (all grids
/// of equal length; pass one grid per row), with the RMS norm over each row. Validation errors
/// of the inputs are returned as `Err`; failures while solving are per row.
pub fn solve_per_sample<T: Scalar, D: RowDynamics<T>>(
    f: &mut D,
    y0: &[T],
    dim: usize,
    ts: &[Vec<f64>],
    opts: &SolveOptions,
    record: Record,
) -> Result<RowSolution<T>, SolveError> {
    solve_per_sample_with(f, RmsNorm, y0, dim, ts, opts, record)
}

/// [`solve_per_sample`] with the row norm `norm` (e.g. [`PrefixNorm`], a seminorm that ignores
/// trailing components of each row).
pub fn solve_per_sample_with<T: Scalar, D: RowDynamics<T>, N: RowNorm<T>>(
    f: &mut D,
    norm: N,
    y0: &[T],
    dim: usize,
    ts: &[Vec<f64>],
    opts: &SolveOptions,
    record: Record,
) -> Result<RowSolution<T>, SolveError> {
    solve_per_sample_with_events(f, norm, y0, dim, ts, opts, &mut NoEvents, record).map(|s| s.rows)
}

/// Gradients of a loss on a per-sample solution: each row's gradient from its own tape (or its
/// own adjoint solve with `adjoint_opts`; `opts` are the forward options), parameter gradients summed over the rows that finished. Rows that failed
/// get NaN in `dL/dy0` and contribute nothing to `dL/dtheta`.
#[allow(clippy::too_many_arguments)]
pub fn per_sample_gradients<T: Scalar, D: VjpDynamics<Vec<T>, Params = Vec<T>>>(
    f: &mut D,
    sol: &RowSolution<T>,
    ts: &[Vec<f64>],
    ybar: &[Vec<T>],
    dim: usize,
    method: GradMethod,
    opts: &SolveOptions,
    adjoint_opts: &AdjointOptions,
) -> Result<(Gradients<Vec<T>, Vec<T>>, Vec<Stats>), SolveError> {
    let batch = ts.len();
    let mut gy0 = vec![T::from_f64(f64::NAN); batch * dim];
    let mut gp = f.param_zeros();
    let mut total = Stats::default();
    let mut per_row = vec![Stats::default(); batch];
    let mut drift: Option<f64> = None;
    for r in 0..batch {
        if sol.row_status[r].is_some() {
            continue;
        }
        let rows = |v: &Vec<T>| v[r * dim..(r + 1) * dim].to_vec();
        let row_ys: Vec<Vec<T>> = sol.ys.iter().map(rows).collect();
        let row_bar: Vec<Vec<T>> = ybar.iter().map(rows).collect();
        let tape = sol.tapes.as_ref().map(|t| &t[r]);
        let g = gradients_with(method, &opts.stepper(), tape, f, &ts[r], &row_ys, &row_bar, adjoint_opts, false)?;
        gy0[r * dim..(r + 1) * dim].copy_from_slice(&g.y0);
        for (a, b) in gp.iter_mut().zip(&g.params) {
            *a += *b;
        }
        total += g.stats;
        per_row[r] = g.stats;
        if let Some(e) = g.reconstruction_error {
            drift = Some(drift.map_or(e, |d| d.max(e)));
        }
    }
    Ok((Gradients { y0: gy0, params: gp, ts: None, stats: total, reconstruction_error: drift }, per_row))
}
