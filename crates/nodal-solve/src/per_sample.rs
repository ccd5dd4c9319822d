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

use crate::controller::PidController;
use crate::dynamics::VjpDynamics;
use crate::error::SolveError;
use crate::grad::{AdjointOptions, GradMethod, Gradients, adjoint, backprop_tape};
use crate::integrate::{MAX_STAGES, Record, check_options, check_times, dense_weights, hermite_basis};
use crate::options::{SolveOptions, StepMode};
use crate::scalar::Scalar;
use crate::solution::{OutputAt, StepRecord, Tape};
use crate::stats::Stats;
use crate::tableau::{DenseOutput, ErrorEstimator, Tableau};

/// Dynamics evaluated on a block of rows, each at its own time.
pub trait RowDynamics<T: Scalar> {
    /// Write `f(t[r], y_r)` for the `t.len()` rows of `y` (row-major, `dim` wide) into `dy`.
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]);
}

impl<T: Scalar> RowDynamics<T> for crate::mlp::Mlp<T> {
    fn eval_rows(&mut self, _t: &[f64], y: &[T], dy: &mut [T]) {
        // Autonomous: one batched pass over the gathered rows.
        self.forward_into(y, dy);
    }
}

/// Adapts a closure `|t: &[f64], y: &[T], dy: &mut [T]| ...` (one time per row) into
/// [`RowDynamics`].
pub struct FnRows<F>(pub F);

impl<T: Scalar, F: FnMut(&[f64], &[T], &mut [T])> RowDynamics<T> for FnRows<F> {
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]) {
        (self.0)(t, y, dy)
    }
}

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

struct Row {
    t: f64,
    h: f64,
    dir: f64,
    next_out: usize,
    have_k0: bool,
    hist: [f64; 3],
    steps: usize,
    last_nonfinite: bool,
    next_stop: usize,
    stops: Vec<(f64, bool)>,
    done: bool,
}

/// Solve every row of `y0` (`[batch][dim]`, row-major) on its own output grid `ts[r]` (all grids
/// of equal length; pass one grid per row). Validation errors of the inputs are returned as
/// `Err`; failures while solving are per row.
pub fn solve_per_sample<T: Scalar, D: RowDynamics<T>>(
    f: &mut D,
    y0: &[T],
    dim: usize,
    ts: &[Vec<f64>],
    opts: &SolveOptions,
    record: Record,
) -> Result<RowSolution<T>, SolveError> {
    check_options(opts)?;
    if dim == 0 || y0.len() % dim != 0 {
        return Err(SolveError::Shape(format!("state of length {} is not a whole number of rows of width {dim}", y0.len())));
    }
    let batch = y0.len() / dim;
    if ts.len() != batch {
        return Err(SolveError::Shape(format!("{} output grids for {batch} rows", ts.len())));
    }
    let n_out = ts.first().map_or(0, |g| g.len());
    let mut dirs = Vec::with_capacity(batch);
    for g in ts {
        if g.len() != n_out {
            return Err(SolveError::InvalidTimes("every row's output grid must have the same length".into()));
        }
        dirs.push(check_times(g)?);
    }
    let tab = opts.method;
    let s = tab.c.len();
    let n_st = match tab.dense {
        DenseOutput::Polynomial { extra_c, .. } => s + extra_c.len(),
        DenseOutput::Hermite => s,
    };
    let adaptive = matches!(opts.step, StepMode::Adaptive);
    let n = batch * dim;
    let nan = T::from_f64(f64::NAN);
    let mut ys: Vec<Vec<T>> = vec![vec![nan; n]; n_out];
    if n_out > 0 {
        ys[0].copy_from_slice(y0);
    }
    let mut status: Vec<Option<SolveError>> = vec![None; batch];
    let mut row_stats = vec![Stats::default(); batch];
    let mut tapes: Option<Vec<Tape<Vec<T>>>> = match record {
        Record::None => None,
        Record::Every(m) => {
            Some((0..batch).map(|_| Tape { steps: vec![], outputs: vec![], every: m.max(1), checkpoints: vec![] }).collect())
        }
    };
    let mut rows: Vec<Row> = (0..batch)
        .map(|r| {
            let g = &ts[r];
            let (t0, t_end, dir) = (g[0], g[n_out.max(1) - 1], dirs[r]);
            let mut stops: Vec<(f64, bool)> = opts
                .tstops
                .iter()
                .copied()
                .filter(|&x| x.is_finite() && dir * (x - t0) > 0.0 && dir * (t_end - x) > 0.0)
                .map(|x| (x, true))
                .collect();
            stops.push((t_end, false));
            stops.sort_by(|a, b| (dir * a.0).partial_cmp(&(dir * b.0)).unwrap());
            stops.dedup_by(|a, b| a.0 == b.0);
            Row {
                t: t0,
                h: 0.0,
                dir,
                next_out: 1,
                have_k0: false,
                hist: [1.0; 3],
                steps: 0,
                last_nonfinite: false,
                next_stop: 0,
                stops,
                done: n_out <= 1,
            }
        })
        .collect();
    for r in 0..batch {
        if !y0[r * dim..(r + 1) * dim].iter().all(|v| v.is_finite()) {
            status[r] = Some(SolveError::NonFinite { what: "initial state", t: ts[r][0], h: 0.0, step: 0 });
            rows[r].done = true;
            for y in ys.iter_mut() {
                y[r * dim..(r + 1) * dim].fill(nan);
            }
        }
    }
    let mut ctx = Ctx { calls: 0, row_evaluations: 0 };
    // Per-row current state and cached first-stage derivative.
    let mut y_all = y0.to_vec();
    let mut k0_all = vec![T::ZERO; n];
    // Gathered buffers for the active block.
    let mut ya = vec![T::ZERO; n];
    let mut k: Vec<Vec<T>> = (0..n_st.max(s)).map(|_| vec![T::ZERO; n]).collect();
    let mut ytmp = vec![T::ZERO; n];
    let mut y1 = vec![T::ZERO; n];
    let mut f1 = vec![T::ZERO; n];
    let mut out_row = vec![T::ZERO; dim];
    let mut times = Vec::with_capacity(batch);

    // Initial derivative and step for every live row, batched (Hairer's algorithm per row).
    let live: Vec<usize> = (0..batch).filter(|&r| !rows[r].done).collect();
    if !live.is_empty() {
        gather(&live, &y_all, &mut ya, dim);
        times.clear();
        times.extend(live.iter().map(|&r| rows[r].t));
        let m = live.len() * dim;
        ctx.eval(f, &times, &ya[..m], &mut k[0][..m]);
        for (j, &r) in live.iter().enumerate() {
            row_stats[r].nfe += 1;
            k0_all[r * dim..(r + 1) * dim].copy_from_slice(&k[0][j * dim..(j + 1) * dim]);
            rows[r].have_k0 = true;
            if !k[0][j * dim..(j + 1) * dim].iter().all(|v| v.is_finite()) {
                let e = SolveError::NonFinite { what: "derivative", t: rows[r].t, h: 0.0, step: 0 };
                fail(&mut rows[r], &mut status[r], e);
            }
        }
        match opts.step {
            StepMode::Fixed(h) => live.iter().for_each(|&r| rows[r].h = h),
            StepMode::Adaptive => {
                let mut h0s = vec![0.0; live.len()];
                let mut d12 = vec![(0.0, 0.0); live.len()];
                for (j, &r) in live.iter().enumerate() {
                    let (yr, fr) = (&ya[j * dim..(j + 1) * dim], &k[0][j * dim..(j + 1) * dim]);
                    let d0 = row_norm(yr, yr, yr, opts.rtol, opts.atol);
                    let d1 = row_norm(fr, yr, yr, opts.rtol, opts.atol);
                    let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
                    h0s[j] = h0;
                    d12[j] = (d1, 0.0);
                    for i in 0..dim {
                        ytmp[j * dim + i] = yr[i] + T::from_f64(rows[r].dir * h0) * fr[i];
                    }
                    times[j] = rows[r].t + rows[r].dir * h0;
                }
                ctx.eval(f, &times, &ytmp[..m], &mut k[1][..m]);
                for (j, &r) in live.iter().enumerate() {
                    row_stats[r].nfe += 1;
                    let yr = &ya[j * dim..(j + 1) * dim];
                    for i in 0..dim {
                        f1[j * dim + i] = k[1][j * dim + i] - k[0][j * dim + i];
                    }
                    let h0 = h0s[j];
                    let d1 = d12[j].0;
                    let d2 = row_norm(&f1[j * dim..(j + 1) * dim], yr, yr, opts.rtol, opts.atol) / h0;
                    let h1 =
                        if d1 <= 1e-15 && d2 <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / d1.max(d2)).powf(1.0 / tab.order as f64) };
                    let h = opts.first_step.map(f64::abs).unwrap_or_else(|| (100.0 * h0).min(h1));
                    rows[r].h = if h.is_finite() && h > 0.0 { h } else { h0 };
                }
            }
        }
    }

    let mut fixed_index = vec![0usize; batch];
    let mut hh = vec![0.0f64; batch];
    let mut landing = vec![false; batch];
    let mut stop_info = vec![(0.0f64, 0.0f64, false); batch];
    // Index buffers reused across iterations (no allocation in the loop).
    let (mut active, mut need_k0, mut block) = (Vec::with_capacity(batch), Vec::with_capacity(batch), Vec::with_capacity(batch));
    let mut hs: Vec<f64> = Vec::with_capacity(batch);
    let mut decisions: Vec<Option<(f64, f64)>> = Vec::with_capacity(batch);
    loop {
        // Rows still integrating, and the ones among them needing a fresh first stage.
        active.clear();
        active.extend((0..batch).filter(|&r| !rows[r].done));
        if active.is_empty() {
            break;
        }
        need_k0.clear();
        need_k0.extend(active.iter().copied().filter(|&r| !rows[r].have_k0));
        if !need_k0.is_empty() {
            let m = need_k0.len() * dim;
            gather(&need_k0, &y_all, &mut ya, dim);
            times.clear();
            times.extend(need_k0.iter().map(|&r| rows[r].t));
            ctx.eval(f, &times, &ya[..m], &mut ytmp[..m]);
            for (j, &r) in need_k0.iter().enumerate() {
                row_stats[r].nfe += 1;
                k0_all[r * dim..(r + 1) * dim].copy_from_slice(&ytmp[j * dim..(j + 1) * dim]);
                rows[r].have_k0 = true;
                if !ytmp[j * dim..(j + 1) * dim].iter().all(|v| v.is_finite()) {
                    let e = SolveError::NonFinite { what: "derivative", t: rows[r].t, h: rows[r].h, step: row_stats[r].accepted };
                    fail(&mut rows[r], &mut status[r], e);
                }
            }
        }
        active.retain(|&r| !rows[r].done);
        // Per-row step sizes and limits.
        block.clear();
        for &r in &active {
            let row = &mut rows[r];
            if row.steps >= opts.max_steps {
                let e = SolveError::MaxStepsExceeded { t: row.t, max_steps: opts.max_steps };
                fail(row, &mut status[r], e);
                continue;
            }
            let (stop_at, user) = row.stops[row.next_stop];
            let (stop, resume) = if user {
                if row.dir > 0.0 { (stop_at.next_down(), stop_at.next_up()) } else { (stop_at.next_up(), stop_at.next_down()) }
            } else {
                (stop_at, stop_at)
            };
            let mut step = match opts.step {
                StepMode::Fixed(hf) => {
                    fixed_index[r] += 1;
                    ts[r][0] + row.dir * hf * fixed_index[r] as f64 - row.t
                }
                StepMode::Adaptive => row.dir * row.h.min(opts.dt_max),
            };
            let remaining = stop - row.t;
            landing[r] = false;
            if row.dir * (step - remaining) >= -1e-10 * step.abs() {
                step = remaining;
                landing[r] = true;
            }
            if adaptive && !landing[r] && (step.abs() < opts.dt_min || row.t + step == row.t) {
                let e = if row.last_nonfinite {
                    SolveError::NonFinite { what: "state", t: row.t, h: step, step: row_stats[r].accepted }
                } else {
                    SolveError::StepSizeUnderflow { t: row.t, h: step, min: opts.dt_min.max(row.t.abs() * f64::EPSILON) }
                };
                fail(row, &mut status[r], e);
                continue;
            }
            hh[r] = step;
            stop_info[r] = (stop, resume, user);
            block.push(r);
        }
        if block.is_empty() {
            continue;
        }
        let nb = block.len();
        let m = nb * dim;
        gather(&block, &y_all, &mut ya, dim);
        gather(&block, &k0_all, &mut k[0], dim);
        hs.clear();
        hs.extend(block.iter().map(|&r| hh[r]));
        // Stages 1..s on the block.
        for i in 1..s {
            row_lincomb(&mut ytmp[..m], &ya[..m], &hs, tab.a[i], &k, dim);
            times.clear();
            times.extend(block.iter().map(|&r| rows[r].t + tab.c[i] * hh[r]));
            let (_, rest) = k.split_at_mut(i);
            ctx.eval(f, &times, &ytmp[..m], &mut rest[0][..m]);
        }
        for &r in &block {
            row_stats[r].nfe += s - 1;
        }
        if tab.fsal && s > 1 {
            y1[..m].copy_from_slice(&ytmp[..m]);
        } else {
            row_lincomb(&mut y1[..m], &ya[..m], &hs, tab.b, &k, dim);
        }
        // Decide per row.
        let mut want_dense = false;
        decisions.clear();
        for (j, &r) in block.iter().enumerate() {
            let row = &mut rows[r];
            row.steps += 1;
            let (yr, y1r) = (&ya[j * dim..(j + 1) * dim], &y1[j * dim..(j + 1) * dim]);
            let finite = y1r.iter().all(|v| v.is_finite());
            let (accept, factor) = if !adaptive {
                if !finite {
                    let e = SolveError::NonFinite { what: "state", t: row.t + hh[r], h: hh[r], step: row_stats[r].accepted };
                    fail(row, &mut status[r], e);
                    decisions.push(None);
                    continue;
                }
                (true, 1.0)
            } else if !finite {
                row.last_nonfinite = true;
                (false, opts.controller.factor_min)
            } else {
                let ratio = row_error(tab, &k, j, dim, hh[r], yr, y1r, opts.rtol, opts.atol);
                if !ratio.is_finite() {
                    row.last_nonfinite = true;
                    (false, opts.controller.factor_min)
                } else {
                    let acc = ratio <= 1.0;
                    let hist = [ratio, row.hist[0], row.hist[1]];
                    let fac = PidController::factor(&opts.controller, hist, tab.order, acc);
                    if acc {
                        row.hist = hist;
                    }
                    row.last_nonfinite = false;
                    (acc, fac)
                }
            };
            if !accept {
                row_stats[r].rejected += 1;
                row.h = hh[r].abs() * factor;
                decisions.push(None);
                continue;
            }
            row_stats[r].accepted += 1;
            let t1 = if landing[r] { stop_info[r].0 } else { row.t + hh[r] };
            let g = &ts[r];
            let mut o = row.next_out;
            while o < n_out && row.dir * (g[o] - t1) <= 0.0 {
                if g[o] != t1 {
                    want_dense = true;
                }
                o += 1;
            }
            decisions.push(Some((factor, t1)));
        }
        // Interpolation stages for the whole block if any accepted row has an interior output.
        if want_dense {
            if let DenseOutput::Polynomial { extra_c, extra_a, .. } = tab.dense {
                for mm in 0..extra_c.len() {
                    row_lincomb(&mut ytmp[..m], &ya[..m], &hs, extra_a[mm], &k, dim);
                    times.clear();
                    times.extend(block.iter().map(|&r| rows[r].t + extra_c[mm] * hh[r]));
                    let (_, rest) = k.split_at_mut(s + mm);
                    ctx.eval(f, &times, &ytmp[..m], &mut rest[0][..m]);
                }
                for &r in &block {
                    row_stats[r].nfe += extra_c.len();
                }
            } else if !tab.fsal {
                times.clear();
                times.extend(block.iter().map(|&r| rows[r].t + hh[r]));
                ctx.eval(f, &times, &y1[..m], &mut f1[..m]);
                for &r in &block {
                    row_stats[r].nfe += 1;
                }
            }
        }
        // Outputs, tapes, advance.
        for (j, &r) in block.iter().enumerate() {
            let Some((factor, t1)) = decisions[j] else { continue };
            let row = &mut rows[r];
            let step_index = row_stats[r].accepted - 1;
            let (yr, y1r) = (&ya[j * dim..(j + 1) * dim], &y1[j * dim..(j + 1) * dim]);
            if let Some(tp) = tapes.as_mut() {
                let tp = &mut tp[r];
                if step_index % tp.every == 0 {
                    tp.checkpoints.push(yr.to_vec());
                }
                tp.steps.push(StepRecord { t: row.t, h: hh[r] });
            }
            let g = &ts[r];
            while row.next_out < n_out && row.dir * (g[row.next_out] - t1) <= 0.0 {
                let to = g[row.next_out];
                let theta = if to == t1 { 1.0 } else { (to - row.t) / hh[r] };
                if theta >= 1.0 {
                    ys[row.next_out][r * dim..(r + 1) * dim].copy_from_slice(y1r);
                } else {
                    row_interpolate(tab, theta, hh[r], yr, y1r, &k, &f1, j, dim, &mut out_row);
                    ys[row.next_out][r * dim..(r + 1) * dim].copy_from_slice(&out_row);
                }
                if let Some(tp) = tapes.as_mut() {
                    tp[r].outputs.push(OutputAt { step: step_index, index: row.next_out, theta: theta.min(1.0) });
                }
                row.next_out += 1;
            }
            y_all[r * dim..(r + 1) * dim].copy_from_slice(y1r);
            let (_, resume, user) = stop_info[r];
            row.t = if landing[r] { resume } else { t1 };
            if landing[r] {
                row.next_stop += 1;
            }
            if tab.fsal && !(landing[r] && user) {
                k0_all[r * dim..(r + 1) * dim].copy_from_slice(&k[s - 1][j * dim..(j + 1) * dim]);
                row.have_k0 = true;
            } else {
                row.have_k0 = false;
            }
            if adaptive {
                row.h = hh[r].abs() * factor;
            }
            if row.next_out >= n_out {
                row.done = true;
            }
        }
    }
    // Failed rows: NaN from the first output they did not reach.
    for r in 0..batch {
        if status[r].is_some() {
            for y in ys.iter_mut().skip(rows[r].next_out.max(if n_out > 0 { 1 } else { 0 })) {
                y[r * dim..(r + 1) * dim].fill(nan);
            }
        }
    }
    Ok(RowSolution { ys, row_status: status, row_stats, calls: ctx.calls, row_evaluations: ctx.row_evaluations, tapes })
}

struct Ctx {
    calls: usize,
    row_evaluations: usize,
}

impl Ctx {
    fn eval<T: Scalar, D: RowDynamics<T>>(&mut self, f: &mut D, t: &[f64], y: &[T], dy: &mut [T]) {
        self.calls += 1;
        self.row_evaluations += t.len();
        f.eval_rows(t, y, dy);
    }
}

fn fail(row: &mut Row, status: &mut Option<SolveError>, e: SolveError) {
    row.done = true;
    *status = Some(e);
}

fn gather<T: Scalar>(rows: &[usize], src: &[T], dst: &mut [T], dim: usize) {
    for (j, &r) in rows.iter().enumerate() {
        dst[j * dim..(j + 1) * dim].copy_from_slice(&src[r * dim..(r + 1) * dim]);
    }
}

/// `out_j = base_j + h_j * sum_i coeffs[i] k_i,j` row by row (same operation order as the
/// joint mode's `set_lincomb`).
fn row_lincomb<T: Scalar>(out: &mut [T], base: &[T], hs: &[f64], coeffs: &[f64], k: &[Vec<T>], dim: usize) {
    out.copy_from_slice(base);
    for (i, c) in coeffs.iter().enumerate() {
        if *c == 0.0 {
            continue;
        }
        for (j, h) in hs.iter().enumerate() {
            let w = T::from_f64(h * c);
            let (o, ki) = (&mut out[j * dim..(j + 1) * dim], &k[i][j * dim..(j + 1) * dim]);
            for (a, b) in o.iter_mut().zip(ki) {
                *a += w * *b;
            }
        }
    }
}

/// RMS of `err / (atol + rtol max(|y0|, |y1|))` over one row.
fn row_norm<T: Scalar>(err: &[T], y0: &[T], y1: &[T], rtol: f64, atol: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..err.len() {
        let sc = atol + rtol * y0[i].abs().to_f64().max(y1[i].abs().to_f64());
        let r = err[i].to_f64() / sc;
        s += r * r;
    }
    if err.is_empty() { 0.0 } else { (s / err.len() as f64).sqrt() }
}

#[allow(clippy::too_many_arguments)]
fn row_error<T: Scalar>(tab: &Tableau, k: &[Vec<T>], j: usize, dim: usize, h: f64, y0: &[T], y1: &[T], rtol: f64, atol: f64) -> f64 {
    let s = tab.c.len();
    let combo = |e: &[f64]| -> Vec<T> {
        let mut out = vec![T::ZERO; dim];
        for (i, c) in e.iter().enumerate().take(s) {
            if *c != 0.0 {
                let w = T::from_f64(h * c);
                for (o, v) in out.iter_mut().zip(&k[i][j * dim..(j + 1) * dim]) {
                    *o += w * *v;
                }
            }
        }
        out
    };
    match tab.error {
        ErrorEstimator::None => 0.0,
        ErrorEstimator::Embedded(e) => row_norm(&combo(e), y0, y1, rtol, atol),
        ErrorEstimator::Dop853 { e5, e3 } => {
            let n5 = row_norm(&combo(e5), y0, y1, rtol, atol);
            let n3 = row_norm(&combo(e3), y0, y1, rtol, atol);
            let den = (n5 * n5 + 0.01 * n3 * n3).sqrt();
            if den > 0.0 { n5 * n5 / den } else { 0.0 }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn row_interpolate<T: Scalar>(
    tab: &Tableau,
    theta: f64,
    h: f64,
    y0: &[T],
    y1: &[T],
    k: &[Vec<T>],
    f1: &[T],
    j: usize,
    dim: usize,
    out: &mut [T],
) {
    let row = |v: &[T]| -> std::ops::Range<usize> {
        let _ = v;
        j * dim..(j + 1) * dim
    };
    match tab.dense {
        DenseOutput::Polynomial { coeffs, .. } => {
            let mut w = [0.0; MAX_STAGES];
            dense_weights(coeffs, theta, &mut w);
            out.copy_from_slice(y0);
            for (i, wi) in w[..coeffs.len()].iter().enumerate() {
                if *wi != 0.0 {
                    let c = T::from_f64(h * wi);
                    for (o, v) in out.iter_mut().zip(&k[i][row(y0)]) {
                        *o += c * *v;
                    }
                }
            }
        }
        DenseOutput::Hermite => {
            let [h00, h10, h01, h11] = hermite_basis(theta);
            let s = tab.c.len();
            let fend: &[T] = if tab.fsal { &k[s - 1][row(y0)] } else { &f1[row(y0)] };
            for i in 0..dim {
                out[i] = T::from_f64(h00) * y0[i]
                    + T::from_f64(h01) * y1[i]
                    + T::from_f64(h * h10) * k[0][j * dim + i]
                    + T::from_f64(h * h11) * fend[i];
            }
        }
    }
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
    for r in 0..batch {
        if sol.row_status[r].is_some() {
            continue;
        }
        let rows = |v: &Vec<T>| v[r * dim..(r + 1) * dim].to_vec();
        let row_ys: Vec<Vec<T>> = sol.ys.iter().map(rows).collect();
        let row_bar: Vec<Vec<T>> = ybar.iter().map(rows).collect();
        let g = match method {
            GradMethod::Adjoint => adjoint(f, &ts[r], &row_ys, &row_bar, adjoint_opts, false)?,
            _ => {
                let tapes =
                    sol.tapes.as_ref().ok_or_else(|| SolveError::InvalidStep("per-sample solve was not recorded for gradients".into()))?;
                backprop_tape(f, opts.method, &tapes[r], &ts[r], &row_ys, &row_bar, false)
            }
        };
        gy0[r * dim..(r + 1) * dim].copy_from_slice(&g.y0);
        for (a, b) in gp.iter_mut().zip(&g.params) {
            *a += *b;
        }
        total += g.stats;
        per_row[r] = g.stats;
    }
    Ok((Gradients { y0: gy0, params: gp, ts: None, stats: total }, per_row))
}
