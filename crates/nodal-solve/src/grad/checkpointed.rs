//! The checkpointed continuous adjoint: the continuous adjoint of Chen et al. 2018 without the
//! reverse-time reconstruction of `y`.
//!
//! The plain continuous adjoint ([`super::adjoint`]) integrates `y` backwards beside the adjoint
//! and resets it only at the output times. When the dynamics contract in some direction, that
//! reconstruction amplifies its own errors (as `e^{k t}` for a contraction rate `k`), and the
//! gradient can be wrong by far more than the tolerance. Here the forward pass keeps `y` at a
//! checkpoint every `m` steps (nothing else per step), and the backward pass, segment by segment
//! from the last:
//!
//! 1. re-solves `y` *forwards* over the segment from its checkpoint, keeping every step's
//!    interpolant (dense output: `m` steps' stages at a time);
//! 2. integrates the adjoint `z = [a, a_theta]` backwards over the segment under
//!
//!    ```text
//!    da/dt = -a^T df/dy (t, y(t)),   da_theta/dt = -a^T df/dtheta (t, y(t)),
//!    ```
//!
//!    with `y(t)` read from that interpolant, adding `dL/dy(t_k)` to `a` at every output time.
//!
//! `y` is therefore never integrated in reverse, and the only errors are those of two
//! forward-stable solves at the adjoint's tolerance. Memory: the checkpoints plus one segment's
//! dense steps; work: one extra forward solve and one VJP per reverse-stage evaluation. This is
//! the interpolating adjoint with checkpoints of SciMLSensitivity (Rackauckas et al. 2020,
//! "Universal differential equations"); compare Zhuang et al. 2020 ("Adaptive checkpoint
//! adjoint", ICML), which differentiates the replayed steps instead.

use super::Gradients;
use super::continuous::{AdjointOptions, reverse_solve, time_gradients};
use crate::dynamics::{Dynamics, VjpDynamics};
use crate::error::SolveError;
use crate::integrate::solve_dense;
use crate::norm::{ErrorNorm, RmsNorm};
use crate::solution::{DenseSolution, Tape};
use crate::state::State;

/// The adjoint `[a, a_theta]` under a stored forward trajectory `y(t)`.
struct InterpolatedAdjoint<'a, D, S> {
    f: &'a mut D,
    y: &'a DenseSolution<S>,
    /// `y(t)` at the current evaluation (reused: no allocation per evaluation).
    y_at: S,
}

impl<S: State, D: VjpDynamics<S>> Dynamics<(S, D::Params)> for InterpolatedAdjoint<'_, D, S> {
    fn eval(&mut self, t: f64, z: &(S, D::Params), dz: &mut (S, D::Params)) {
        self.y.eval_into(t, &mut self.y_at);
        let (da, dp) = (&mut dz.0, &mut dz.1);
        dp.scale(0.0);
        self.f.vjp(t, &self.y_at, &z.0, da, dp);
        da.scale(-1.0);
        dp.scale(-1.0);
    }
}

/// RMS error over `a` only, ignoring `a_theta` (the seminorm of Kidger, Chen, Lyons 2021).
#[derive(Debug, Clone, Copy, Default)]
struct StateSeminorm;

impl<S: State, P: State> ErrorNorm<(S, P)> for StateSeminorm {
    fn norm(&self, err: &(S, P), y0: &(S, P), y1: &(S, P), rtol: f64, atol: f64) -> f64 {
        let (s, n) = S::weighted_sq_sum(&err.0, &y0.0, &y1.0, rtol, atol);
        if n == 0 { 0.0 } else { (s / n as f64).sqrt() }
    }
}

/// Gradients by the checkpointed continuous adjoint. `tape` holds the forward pass's
/// checkpoints (its step records are not used); `ys` are the forward outputs at `ts`, `ybar[k] =
/// dL/dy(t_k)`. The segment re-solves and the reverse solves use `opts.solve` (method,
/// tolerances, limits). Backward statistics: `nfe` counts the re-solves' evaluations, `nvjp`
/// the reverse solves' (each one VJP), `accepted`/`rejected` both solves' steps.
pub fn checkpointed_adjoint<S: State, D: VjpDynamics<S>>(
    f: &mut D,
    tape: &Tape<S>,
    ts: &[f64],
    ys: &[S],
    ybar: &[S],
    opts: &AdjointOptions,
    want_t: bool,
) -> Result<Gradients<S, D::Params>, SolveError> {
    let n = ts.len();
    let mut pbar = f.param_zeros();
    if n == 1 {
        return Ok(Gradients {
            y0: ybar[0].clone(),
            params: pbar,
            ts: want_t.then(|| vec![0.0]),
            stats: Default::default(),
            reconstruction_error: None,
        });
    }
    if tape.checkpoints.is_empty() || tape.checkpoints.len() != tape.checkpoint_times.len() {
        return Err(SolveError::InvalidStep("the forward solve kept no checkpoints for the checkpointed adjoint".into()));
    }
    let (t_first, t_last) = (ts[0], ts[n - 1]);
    let dir = if t_last >= t_first { 1.0 } else { -1.0 };
    // Segment ends: every checkpoint time, then the last output time.
    let mut ends = tape.checkpoint_times.clone();
    ends.push(t_last);
    let mut stats = crate::stats::Stats::default();
    let mut a = ybar[n - 1].clone();
    // Outputs not yet added to `a`, counted from the first: `ts[..pending]`.
    let mut pending = n - 1;
    for j in (0..tape.checkpoints.len()).rev() {
        let (start, end) = (ends[j], ends[j + 1]);
        if dir * (end - start) <= 0.0 {
            continue;
        }
        // 1. y over the segment, forwards from its checkpoint, with every step's interpolant.
        let (replay, dense) = solve_dense(f, &tape.checkpoints[j], &[start, end], &opts.solve, &RmsNorm).map_err(|e| e.error)?;
        stats.nfe += replay.stats.nfe;
        stats.accepted += replay.stats.accepted;
        stats.rejected += replay.stats.rejected;
        // 2. The adjoint backwards over the segment, landing on the outputs strictly inside it.
        let first_inside = ts[..pending].partition_point(|&t| dir * (t - start) <= 0.0);
        let mut ts_rev = Vec::with_capacity(pending - first_inside + 2);
        ts_rev.push(end);
        ts_rev.extend(ts[first_inside..pending].iter().rev());
        ts_rev.push(start);
        let hook_outputs = pending;
        let mut hook = |idx: usize, _t: f64, z: &mut (S, D::Params)| {
            // Indices 1..=inside are outputs (the last index is the segment's start).
            if idx >= 1 && idx <= hook_outputs - first_inside {
                z.0.axpy(1.0, &ybar[hook_outputs - idx]);
            }
            true
        };
        let z0 = (a, pbar);
        let mut aug = InterpolatedAdjoint { f: &mut *f, y: &dense, y_at: tape.checkpoints[j].zeros_like() };
        let sol = if opts.seminorm {
            reverse_solve(&mut aug, &StateSeminorm, &z0, &ts_rev, &opts.solve, &mut hook)
        } else {
            reverse_solve(&mut aug, &RmsNorm, &z0, &ts_rev, &opts.solve, &mut hook)
        };
        let (sol, _) = sol.map_err(|e| e.error)?;
        stats.nvjp += sol.stats.nfe;
        stats.accepted += sol.stats.accepted;
        stats.rejected += sol.stats.rejected;
        (a, pbar) = sol.ys.into_iter().next_back().expect("solution has the final output");
        pending = first_inside;
        // An output exactly at the segment's start (other than the first) joins `a` here.
        if pending > 1 && ts[pending - 1] == start {
            a.axpy(1.0, &ybar[pending - 1]);
            pending -= 1;
        }
    }
    let ts_grad = want_t.then(|| time_gradients(f, ts, ys, ybar, &a, &mut stats));
    let mut y0bar = a;
    y0bar.axpy(1.0, &ybar[0]);
    Ok(Gradients { y0: y0bar, params: pbar, ts: ts_grad, stats, reconstruction_error: None })
}
