//! The one integration loop: adaptive or fixed steps of an explicit Runge-Kutta tableau, dense
//! output at the requested times (ascending or descending), steps that never cross `tstops`,
//! statistics, typed failures with the partial solution, and an optional tape for gradients.

use crate::dynamics::Dynamics;
use crate::error::{SolveError, SolveFailure};
use crate::norm::ErrorNorm;
use crate::options::{SolveOptions, StepMode};
use crate::solution::{DenseSolution, DenseStep, OutputAt, Solution, StepRecord, Tape};
use crate::state::State;
use crate::stats::Stats;
use crate::tableau::{DenseOutput, ErrorEstimator, Tableau};

/// Largest number of stages (main plus extra) a tableau may have.
pub(crate) const MAX_STAGES: usize = 16;

/// What the loop should record for a later backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Nothing (plain solve, continuous adjoint).
    None,
    /// Step sizes, output positions, and one state per `every` steps.
    Every(usize),
}

/// Called when a hard output time is reached exactly; may modify the state (a jump). Returns
/// whether it did, so that a cached derivative is discarded.
pub type OutputHook<'a, S> = &'a mut dyn FnMut(usize, f64, &mut S) -> bool;

/// Validate output times: finite, strictly monotone; returns the direction (+1 or -1).
pub(crate) fn check_times(ts: &[f64]) -> Result<f64, SolveError> {
    if ts.is_empty() {
        return Err(SolveError::InvalidTimes("no output times given".into()));
    }
    if let Some(i) = ts.iter().position(|t| !t.is_finite()) {
        return Err(SolveError::InvalidTimes(format!("t[{i}] = {} is not finite", ts[i])));
    }
    if ts.len() == 1 {
        return Ok(1.0);
    }
    let dir = if ts[1] > ts[0] { 1.0 } else { -1.0 };
    for i in 1..ts.len() {
        if !(dir * (ts[i] - ts[i - 1]) > 0.0) {
            return Err(SolveError::InvalidTimes(format!(
                "times must be strictly increasing or strictly decreasing; t[{}] = {} then t[{}] = {}",
                i - 1,
                ts[i - 1],
                i,
                ts[i]
            )));
        }
    }
    Ok(dir)
}

pub(crate) fn check_options(opts: &SolveOptions) -> Result<(), SolveError> {
    let tab = opts.method;
    match opts.step {
        StepMode::Adaptive => {
            if matches!(tab.error, ErrorEstimator::None) {
                return Err(SolveError::InvalidStep(format!("method '{}' has no error estimator: give a fixed step size", tab.name)));
            }
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !ok(opts.rtol) || !ok(opts.atol) || (opts.rtol == 0.0 && opts.atol == 0.0) {
                return Err(SolveError::InvalidTolerance { rtol: opts.rtol, atol: opts.atol });
            }
        }
        StepMode::Fixed(h) => {
            if !(h.is_finite() && h > 0.0) {
                return Err(SolveError::InvalidStep(format!("fixed step size must be positive and finite, got {h}")));
            }
        }
    }
    if opts.max_steps == 0 {
        return Err(SolveError::InvalidStep("max_steps must be at least 1".into()));
    }
    if !(opts.dt_max > 0.0) || opts.dt_min.is_nan() || opts.dt_min < 0.0 {
        return Err(SolveError::InvalidStep(format!(
            "need 0 <= dt_min and dt_max > 0, got dt_min = {}, dt_max = {}",
            opts.dt_min, opts.dt_max
        )));
    }
    Ok(())
}

/// Hairer's initial step selection (Hairer, Norsett, Wanner, *Solving ODEs I*, sec. II.4):
/// one extra evaluation. `f0 = f(t0, y0)` is given.
#[allow(clippy::too_many_arguments)]
fn initial_step<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    norm: &N,
    t0: f64,
    y0: &S,
    f0: &S,
    dir: f64,
    order: u32,
    rtol: f64,
    atol: f64,
    tmp: &mut S,
    tmp2: &mut S,
    stats: &mut Stats,
) -> f64 {
    let d0 = norm.norm(y0, y0, y0, rtol, atol);
    let d1 = norm.norm(f0, y0, y0, rtol, atol);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
    tmp.assign(y0);
    tmp.axpy(dir * h0, f0);
    f.eval(t0 + dir * h0, tmp, tmp2);
    stats.nfe += 1;
    tmp2.axpy(-1.0, f0);
    let d2 = norm.norm(tmp2, y0, y0, rtol, atol) / h0;
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / d1.max(d2)).powf(1.0 / order as f64) };
    let h = (100.0 * h0).min(h1);
    if h.is_finite() && h > 0.0 { h } else { h0 }
}

/// Weights `b_i(theta)` of a polynomial interpolant into `w` (main then extra stages).
pub(crate) fn dense_weights(coeffs: &[&[f64]], theta: f64, w: &mut [f64; MAX_STAGES]) {
    for (i, row) in coeffs.iter().enumerate() {
        let mut acc = 0.0;
        for c in row.iter().rev() {
            acc = (acc + c) * theta;
        }
        w[i] = acc;
    }
}

/// Cubic Hermite basis `(h00, h10, h01, h11)` at `theta`.
pub(crate) fn hermite_basis(theta: f64) -> [f64; 4] {
    let t2 = theta * theta;
    let t3 = t2 * theta;
    [2.0 * t3 - 3.0 * t2 + 1.0, t3 - 2.0 * t2 + theta, -2.0 * t3 + 3.0 * t2, t3 - t2]
}

/// Number of stages the tableau evaluates on a step that contains dense outputs.
pub(crate) fn dense_stage_count(tab: &Tableau) -> usize {
    match tab.dense {
        DenseOutput::Polynomial { extra_c, .. } => tab.c.len() + extra_c.len(),
        DenseOutput::Hermite => tab.c.len(),
    }
}

/// Reusable stage buffers of one Runge-Kutta step.
pub(crate) struct Workspace<S> {
    pub k: Vec<S>,
    pub ytmp: S,
    pub y1: S,
    pub err: S,
    pub err3: S,
    /// `f(t_{n+1}, y_{n+1})` for Hermite interpolation of non-FSAL methods.
    pub f1: S,
    /// Zeros, the base of error combinations (never written).
    pub zero: S,
}

impl<S: State> Workspace<S> {
    pub fn new(tab: &Tableau, y: &S) -> Self {
        let n = dense_stage_count(tab).max(tab.c.len());
        Self {
            k: (0..n).map(|_| y.zeros_like()).collect(),
            ytmp: y.zeros_like(),
            y1: y.zeros_like(),
            err: y.zeros_like(),
            err3: y.zeros_like(),
            f1: y.zeros_like(),
            zero: y.zeros_like(),
        }
    }
}

/// Evaluate stages `1..s` of a step from `y` (stage 0 must be in `ws.k[0]`) and write the
/// propagated solution into `ws.y1`.
pub(crate) fn rk_stages<S: State, D: Dynamics<S>>(
    tab: &Tableau,
    f: &mut D,
    t: f64,
    h: f64,
    y: &S,
    ws: &mut Workspace<S>,
    stats: &mut Stats,
) {
    let s = tab.c.len();
    for i in 1..s {
        let (done, rest) = ws.k.split_at_mut(i);
        ws.ytmp.set_lincomb(y, h, tab.a[i], done);
        f.eval(t + tab.c[i] * h, &ws.ytmp, &mut rest[0]);
        stats.nfe += 1;
    }
    if tab.fsal && s > 1 {
        std::mem::swap(&mut ws.y1, &mut ws.ytmp);
    } else {
        ws.y1.set_lincomb(y, h, tab.b, &ws.k[..s]);
    }
}

/// Evaluate the extra (interpolation-only) stages of a step.
pub(crate) fn extra_stages<S: State, D: Dynamics<S>>(
    tab: &Tableau,
    f: &mut D,
    t: f64,
    h: f64,
    y: &S,
    ws: &mut Workspace<S>,
    stats: &mut Stats,
) {
    if let DenseOutput::Polynomial { extra_c, extra_a, .. } = tab.dense {
        let s = tab.c.len();
        for m in 0..extra_c.len() {
            let (done, rest) = ws.k.split_at_mut(s + m);
            ws.ytmp.set_lincomb(y, h, extra_a[m], done);
            f.eval(t + extra_c[m] * h, &ws.ytmp, &mut rest[0]);
            stats.nfe += 1;
        }
    }
}

/// Dense output at `theta` in the step `(t, h)` from `y` to `ws.y1`. For Hermite
/// interpolation `f1` must hold `f(t + h, y1)` (the FSAL stage for FSAL methods).
pub(crate) fn interpolate<S: State>(tab: &Tableau, theta: f64, h: f64, y: &S, ws: &Workspace<S>, out: &mut S) {
    match tab.dense {
        DenseOutput::Polynomial { coeffs, .. } => {
            let mut w = [0.0; MAX_STAGES];
            dense_weights(coeffs, theta, &mut w);
            out.set_lincomb(y, h, &w[..coeffs.len()], &ws.k);
        }
        DenseOutput::Hermite => {
            let [h00, h10, h01, h11] = hermite_basis(theta);
            let f1 = if tab.fsal { &ws.k[tab.c.len() - 1] } else { &ws.f1 };
            out.assign(y);
            out.scale(h00);
            out.axpy(h01, &ws.y1);
            out.axpy(h * h10, &ws.k[0]);
            out.axpy(h * h11, f1);
        }
    }
}

/// Error ratio of the step just computed (`<= 1` accepts).
pub(crate) fn error_ratio<S: State, N: ErrorNorm<S>>(
    tab: &Tableau,
    norm: &N,
    h: f64,
    y: &S,
    ws: &mut Workspace<S>,
    rtol: f64,
    atol: f64,
) -> f64 {
    let s = tab.c.len();
    match tab.error {
        ErrorEstimator::None => 0.0,
        ErrorEstimator::Embedded(e) => {
            ws.err.set_lincomb(&ws.zero, h, e, &ws.k[..s]);
            norm.norm(&ws.err, y, &ws.y1, rtol, atol)
        }
        ErrorEstimator::Dop853 { e5, e3 } => {
            ws.err.set_lincomb(&ws.zero, h, e5, &ws.k[..s]);
            ws.err3.set_lincomb(&ws.zero, h, e3, &ws.k[..s]);
            let n5 = norm.norm(&ws.err, y, &ws.y1, rtol, atol);
            let n3 = norm.norm(&ws.err3, y, &ws.y1, rtol, atol);
            let den = (n5 * n5 + 0.01 * n3 * n3).sqrt();
            if den > 0.0 { n5 * n5 / den } else { 0.0 }
        }
    }
}

/// Solve `dy/dt = f(t, y)`, `y(ts[0]) = y0`, returning `y` at every time in `ts`.
pub fn solve<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
) -> Result<Solution<S>, Box<SolveFailure<S>>> {
    integrate(f, y0, ts, opts, norm, Record::None, false, None).map(|(s, _)| s)
}

/// The loop itself; see the module docs. With `hard_outputs`, steps land exactly on every
/// output time and `hook` runs there.
#[allow(clippy::too_many_arguments)]
pub fn integrate<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
    record: Record,
    hard_outputs: bool,
    hook: Option<OutputHook<'_, S>>,
) -> Result<(Solution<S>, Option<Tape<S>>), Box<SolveFailure<S>>> {
    integrate_inner(f, y0, ts, opts, norm, record, hard_outputs, hook, None)
}

/// Solve like [`solve`] and also return a [`DenseSolution`]: every accepted step with the stage
/// derivatives its interpolant needs, so the solution can be evaluated anywhere in the span.
/// Costs one state per stage per step; DOP853 evaluates its interpolation stages on every step,
/// and non-FSAL Hermite methods evaluate `f(y_{n+1})` (reused as the next step's first stage).
pub fn solve_dense<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
) -> Result<(Solution<S>, DenseSolution<S>), Box<SolveFailure<S>>> {
    let mut steps = Vec::new();
    let (sol, _) = integrate_inner(f, y0, ts, opts, norm, Record::None, false, None, Some(&mut steps))?;
    Ok((sol, DenseSolution { method: opts.method, steps }))
}

#[allow(clippy::too_many_arguments)]
fn integrate_inner<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
    record: Record,
    hard_outputs: bool,
    mut hook: Option<OutputHook<'_, S>>,
    mut dense: Option<&mut Vec<DenseStep<S>>>,
) -> Result<(Solution<S>, Option<Tape<S>>), Box<SolveFailure<S>>> {
    let mut stats = Stats::default();
    let fail = |error: SolveError, ts_done: &[f64], ys: Vec<S>, stats: Stats| {
        Box::new(SolveFailure { error, partial: Solution { ts: ts_done.to_vec(), ys, stats } })
    };
    let dir = match check_times(ts).and_then(|d| check_options(opts).map(|_| d)) {
        Ok(d) => d,
        Err(e) => return Err(fail(e, &[], Vec::new(), stats)),
    };
    let tab = opts.method;
    if !y0.all_finite() {
        let e = SolveError::NonFinite { what: "initial state", t: ts[0], h: 0.0, step: 0 };
        return Err(fail(e, &[], Vec::new(), stats));
    }
    let mut tape = match record {
        Record::None => None,
        Record::Every(m) => Some(Tape { steps: Vec::new(), outputs: Vec::new(), every: m.max(1), checkpoints: Vec::new() }),
    };
    let mut ys: Vec<S> = Vec::with_capacity(ts.len());
    ys.push(y0.clone());
    let n_out = ts.len();
    if n_out == 1 {
        return Ok((Solution { ts: ts.to_vec(), ys, stats }, tape));
    }
    let t0 = ts[0];
    let t_end = ts[n_out - 1];
    let s = tab.c.len();
    let adaptive = matches!(opts.step, StepMode::Adaptive);

    // Times steps must land on: user tstops strictly inside the span, plus outputs if hard.
    // A user stop is a possible discontinuity of f: the step before it ends one ulp short and
    // the next starts one ulp past it, so no stage evaluates f exactly at the jump.
    let mut stops: Vec<(f64, bool)> = opts
        .tstops
        .iter()
        .copied()
        .filter(|&x| x.is_finite() && dir * (x - t0) > 0.0 && dir * (t_end - x) > 0.0 && !(hard_outputs && ts.contains(&x)))
        .map(|x| (x, true))
        .collect();
    if hard_outputs {
        stops.extend(ts[1..n_out - 1].iter().map(|&x| (x, false)));
    }
    stops.push((t_end, false));
    stops.sort_by(|a, b| (dir * a.0).partial_cmp(&(dir * b.0)).unwrap());
    stops.dedup_by(|a, b| a.0 == b.0);
    let mut next_stop = 0usize;

    let mut ws = Workspace::new(tab, y0);
    let mut y = y0.clone();
    let mut out_buf = y0.zeros_like();
    let mut t = t0;
    let mut next_out = 1usize;
    let mut have_k0 = false;
    let mut history = [1.0f64; 3];
    let mut n_steps = 0usize; // accepted + rejected
    let mut last_nonfinite = false;

    // First derivative and first step.
    let mut h = match opts.step {
        StepMode::Fixed(h) => h,
        StepMode::Adaptive => {
            f.eval(t, &y, &mut ws.k[0]);
            stats.nfe += 1;
            have_k0 = true;
            if !ws.k[0].all_finite() {
                let e = SolveError::NonFinite { what: "derivative", t, h: 0.0, step: 0 };
                return Err(fail(e, &ts[..1], ys, stats));
            }
            match opts.first_step {
                Some(h) => h.abs(),
                None => {
                    let (a, b) = (&mut ws.ytmp, &mut ws.y1);
                    initial_step(f, norm, t, &y, &ws.k[0], dir, tab.order, opts.rtol, opts.atol, a, b, &mut stats)
                }
            }
        }
    };
    let fixed_index_base = t0;
    let mut fixed_index = 0usize;

    while next_out < n_out {
        if n_steps >= opts.max_steps {
            let e = SolveError::MaxStepsExceeded { t, max_steps: opts.max_steps };
            return Err(fail(e, &ts[..ys.len()], ys, stats));
        }
        if !have_k0 {
            f.eval(t, &y, &mut ws.k[0]);
            stats.nfe += 1;
            have_k0 = true;
            if !ws.k[0].all_finite() {
                let e = SolveError::NonFinite { what: "derivative", t, h, step: stats.accepted };
                return Err(fail(e, &ts[..ys.len()], ys, stats));
            }
        }
        // Proposed signed step, clipped to the next stop.
        let (stop_at, user_stop) = stops[next_stop];
        let (stop, resume) = if user_stop {
            if dir > 0.0 { (stop_at.next_down(), stop_at.next_up()) } else { (stop_at.next_up(), stop_at.next_down()) }
        } else {
            (stop_at, stop_at)
        };
        let mut hh = match opts.step {
            StepMode::Fixed(hf) => {
                // Grid t0 + m h computed by multiplication: no drift over many steps.
                fixed_index += 1;
                fixed_index_base + dir * hf * fixed_index as f64 - t
            }
            StepMode::Adaptive => dir * h.min(opts.dt_max),
        };
        let mut landing = false;
        let remaining = stop - t;
        // Land on the stop if the step reaches it, or would leave a sliver under 1e-10 of a step.
        if dir * (hh - remaining) >= -1e-10 * hh.abs() {
            hh = remaining;
            landing = true;
        }
        if adaptive && !landing && (hh.abs() < opts.dt_min || t + hh == t) {
            let e = if last_nonfinite {
                SolveError::NonFinite { what: "state", t, h: hh, step: stats.accepted }
            } else {
                SolveError::StepSizeUnderflow { t, h: hh, min: opts.dt_min.max(t.abs() * f64::EPSILON) }
            };
            return Err(fail(e, &ts[..ys.len()], ys, stats));
        }
        rk_stages(tab, f, t, hh, &y, &mut ws, &mut stats);
        n_steps += 1;
        let finite = ws.y1.all_finite();
        let (accept, factor) = if !adaptive {
            if !finite {
                let e = SolveError::NonFinite { what: "state", t: t + hh, h: hh, step: stats.accepted };
                return Err(fail(e, &ts[..ys.len()], ys, stats));
            }
            (true, 1.0)
        } else if !finite {
            last_nonfinite = true;
            (false, opts.controller.factor_min)
        } else {
            let r = error_ratio(tab, norm, hh, &y, &mut ws, opts.rtol, opts.atol);
            if !r.is_finite() {
                last_nonfinite = true;
                (false, opts.controller.factor_min)
            } else {
                let acc = r <= 1.0;
                let hist = [r, history[0], history[1]];
                let fac = opts.controller.factor(hist, tab.order, acc);
                if acc {
                    history = hist;
                }
                last_nonfinite = false;
                (acc, fac)
            }
        };
        if !accept {
            stats.rejected += 1;
            h = hh.abs() * factor;
            continue;
        }
        stats.accepted += 1;
        let t1 = if landing { stop } else { t + hh };
        let t_next = if landing { resume } else { t1 };
        let step_index = stats.accepted - 1;
        if let Some(tp) = tape.as_mut() {
            if step_index % tp.every == 0 {
                tp.checkpoints.push(y.clone());
            }
            tp.steps.push(StepRecord { t, h: hh });
        }
        // Outputs inside (t, t1].
        let mut dense_ready = false;
        while next_out < n_out && dir * (ts[next_out] - t1) <= 0.0 {
            let to = ts[next_out];
            let theta = if to == t1 { 1.0 } else { (to - t) / hh };
            if theta >= 1.0 {
                ys.push(ws.y1.clone());
            } else {
                if !dense_ready {
                    extra_stages(tab, f, t, hh, &y, &mut ws, &mut stats);
                    if matches!(tab.dense, DenseOutput::Hermite) && !tab.fsal {
                        f.eval(t1, &ws.y1, &mut ws.f1);
                        stats.nfe += 1;
                    }
                    dense_ready = true;
                }
                interpolate(tab, theta, hh, &y, &ws, &mut out_buf);
                ys.push(out_buf.clone());
            }
            if let Some(tp) = tape.as_mut() {
                tp.outputs.push(OutputAt { step: step_index, index: next_out, theta: theta.min(1.0) });
            }
            next_out += 1;
        }
        let mut f1_is_next_k0 = false;
        if let Some(steps) = dense.as_mut() {
            let k = match tab.dense {
                DenseOutput::Polynomial { .. } => {
                    if !dense_ready {
                        extra_stages(tab, f, t, hh, &y, &mut ws, &mut stats);
                    }
                    ws.k[..dense_stage_count(tab)].to_vec()
                }
                DenseOutput::Hermite if tab.fsal => vec![ws.k[0].clone(), ws.k[s - 1].clone()],
                DenseOutput::Hermite => {
                    if !dense_ready {
                        f.eval(t1, &ws.y1, &mut ws.f1);
                        stats.nfe += 1;
                    }
                    f1_is_next_k0 = !(landing && user_stop);
                    vec![ws.k[0].clone(), ws.f1.clone()]
                }
            };
            steps.push(DenseStep { t, h: hh, y0: y.clone(), y1: ws.y1.clone(), k });
        }
        // Advance.
        std::mem::swap(&mut y, &mut ws.y1);
        t = t_next;
        let mut jumped = false;
        if landing {
            next_stop += 1;
            if hard_outputs && let Some(hk) = hook.as_mut() {
                let idx = next_out - 1;
                if ts[idx] == t {
                    jumped = hk(idx, t, &mut y);
                }
            }
        }
        if tab.fsal && !jumped && !(landing && user_stop) {
            ws.k.swap(0, s - 1);
            have_k0 = true;
        } else if f1_is_next_k0 && !jumped {
            std::mem::swap(&mut ws.k[0], &mut ws.f1);
            have_k0 = true;
        } else {
            have_k0 = false;
        }
        if adaptive {
            h = hh.abs() * factor;
        }
    }
    Ok((Solution { ts: ts.to_vec(), ys, stats }, tape))
}
