//! The one integration loop.
//!
//! [`diffeqsolve`] steps any [`Lanes`] (one joint lane or many rows) with any [`Stepper`] under
//! any [`Controller`], recording what [`SaveAt`] asks for and, with [`Record::Every`], a tape
//! for exact gradients. Each lane has its own control state (time, step, controller memory,
//! stops, status); the accept / land-on-stop / record logic below is written once for all.
//!
//! Steps never cross a stop: the end of the span, `tstops` (possible discontinuities of `f`:
//! the step before one ends one ulp short and the next starts one ulp past it, so no stage
//! evaluates `f` at the jump) and, with [`SaveAt::land`], every output time. Output times
//! inside a step are filled from the stepper's interpolant. Failures are per lane and typed; a
//! failed lane stops, the others go on.
//!
//! The functions at the end ([`solve`], [`solve_recorded`], [`solve_dense`]) are the joint
//! solve of a [`Dynamics`] under [`SolveOptions`].

use crate::controller::{Controller, StepControl, initial_step};
use crate::dynamics::Dynamics;
use crate::error::{SolveError, SolveFailure, SolveResult};
use crate::events::{Action, EventHit, Events, NoEvents, crosses, crosses_from_zero, locate_root};
use crate::implicit::StepFailure;
use crate::lanes::{Joint, Lanes};
use crate::norm::ErrorNorm;
use crate::options::SolveOptions;
use crate::save_at::SaveAt;
use crate::solution::{DenseSolution, DenseStep, OutputAt, Solution, StepRecord, Tape};
use crate::state::State;
use crate::stats::Stats;
use crate::stepper::Stepper;

/// What the loop should record for a later backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Nothing (plain solve, continuous adjoint).
    None,
    /// Step sizes, output positions, and one state per `every` steps.
    Every(usize),
    /// One state (and its time) per `every` steps and nothing per step: the checkpointed
    /// continuous adjoint re-solves each segment from its checkpoint, so its memory is linear
    /// in the number of checkpoints, not of steps.
    Checkpoints(usize),
}

/// Limits of a solve that belong to neither the stepper nor the controller.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Most steps (accepted plus rejected) per lane before it fails.
    pub max_steps: usize,
    /// Times steps must land on rather than cross.
    pub tstops: Vec<f64>,
    /// Most bytes the solve may store over all lanes: the gradient tape, dense steps and step
    /// records. Past it the lane fails with [`SolveError::MemoryLimit`] (0 = no limit).
    pub max_memory: usize,
}

/// What one lane's solve produced besides its outputs (which the [`Lanes`] hold).
#[derive(Debug, Clone)]
pub struct LaneResult<Y> {
    /// Work done on this lane (`nfe` counts the evaluations that included it).
    pub stats: Stats,
    /// `None` if the lane reached its last output, its error otherwise.
    pub status: Option<SolveError>,
    /// Outputs reached (`ts[..reached]` are filled).
    pub reached: usize,
    /// The tape, with [`Record::Every`].
    pub tape: Option<Tape<Y>>,
    /// Every accepted step with its interpolant, with [`SaveAt::dense`].
    pub dense: Option<Vec<DenseStep<Y>>>,
    /// `(t, y)` at the end of every accepted step, with [`SaveAt::steps`].
    pub steps: Option<Vec<(f64, Y)>>,
    /// Events that fired, in order (see [`crate::events`]); a terminal one ends the list.
    pub hits: Vec<EventHit>,
}

/// Validate output times: finite, strictly monotone; returns the direction (+1 or -1).
pub fn check_times(ts: &[f64]) -> Result<f64, SolveError> {
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
        if dir * (ts[i] - ts[i - 1]) <= 0.0 {
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

/// Settings checks that do not depend on the state.
pub(crate) fn check_setup<St: Stepper, C: Controller>(stepper: &St, controller: &C, limits: &Limits) -> Result<(), SolveError> {
    if controller.is_adaptive() && !stepper.has_error_estimate() {
        return Err(SolveError::InvalidStep(format!("method '{}' has no error estimator: give a fixed step size", stepper.name())));
    }
    controller.validate()?;
    if limits.max_steps == 0 {
        return Err(SolveError::InvalidStep("max_steps must be at least 1".into()));
    }
    Ok(())
}

/// Control state of one lane.
struct Lane<M> {
    t0: f64,
    t: f64,
    h: f64,
    dir: f64,
    memory: M,
    next_out: usize,
    have_k0: bool,
    attempts: usize,
    last_nonfinite: bool,
    /// Why the last attempt's implicit solve failed (reported if the step then underflows).
    last_failure: Option<StepFailure>,
    next_stop: usize,
    /// `(time, is a user stop)`, in the direction of integration.
    stops: Vec<(f64, bool)>,
    done: bool,
    /// Event function values at the current state (valid once `g_ready`).
    g: Vec<f64>,
    g_ready: bool,
    /// A located event `(index, time)` the next step lands on.
    pending: Option<(usize, f64)>,
}

/// The step a lane attempts this iteration.
#[derive(Clone, Copy, Default)]
struct Attempt {
    h: f64,
    landing: bool,
    stop: f64,
    resume: f64,
    user_stop: bool,
    accept: bool,
    factor: f64,
    /// The step ends at this event's time: if accepted, the event fires.
    event: Option<usize>,
}

/// Solve: step every lane of `lanes` from its first output time to its last. Returns one
/// [`LaneResult`] per lane, or an error when the inputs are unusable (times, settings); lanes
/// that fail while stepping report it in their [`LaneResult::status`].
pub fn diffeqsolve<L: Lanes, St: Stepper, C: Controller>(
    lanes: &mut L,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt<'_>,
    limits: &Limits,
    record: Record,
) -> Result<Vec<LaneResult<L::Lane>>, SolveError> {
    diffeqsolve_with_events(lanes, stepper, controller, save_at, limits, record, &mut NoEvents)
}

/// [`diffeqsolve`] with event functions checked after every accepted step of every lane (see
/// [`crate::events`]): located on the interpolant, landed on exactly, and stopped at, jumped at
/// or recorded per lane.
pub fn diffeqsolve_with_events<L: Lanes, St: Stepper, C: Controller, E: Events>(
    lanes: &mut L,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt<'_>,
    limits: &Limits,
    record: Record,
    events: &mut E,
) -> Result<Vec<LaneResult<L::Lane>>, SolveError> {
    let ne = events.count();
    let event_tol = events.time_tolerance();
    let n_lanes = lanes.count();
    let mut dirs = Vec::with_capacity(n_lanes);
    let mut n_out = None;
    for r in 0..n_lanes {
        let g = save_at.times.of(r);
        if *n_out.get_or_insert(g.len()) != g.len() {
            return Err(SolveError::InvalidTimes("every lane's output grid must have the same length".into()));
        }
        dirs.push(check_times(g)?);
    }
    check_setup(stepper, controller, limits)?;
    let n_out = n_out.unwrap_or(0);
    let adaptive = controller.is_adaptive();
    let (rtol, atol) = controller.tolerances();
    let order = stepper.order();

    let mut results: Vec<LaneResult<L::Lane>> = (0..n_lanes)
        .map(|_| LaneResult {
            stats: Stats::default(),
            status: None,
            reached: 1,
            tape: match record {
                Record::None => None,
                Record::Every(m) => Some(Tape::new(m, true)),
                Record::Checkpoints(m) => Some(Tape::new(m, false)),
            },
            dense: save_at.dense.then(Vec::new),
            steps: save_at.steps.then(Vec::new),
            hits: Vec::new(),
        })
        .collect();
    let mut ctl: Vec<Lane<C::Memory>> = (0..n_lanes)
        .map(|r| {
            let g = save_at.times.of(r);
            let (t0, t_end, dir) = (g[0], g[n_out - 1], dirs[r]);
            let mut stops: Vec<(f64, bool)> = limits
                .tstops
                .iter()
                .copied()
                .filter(|&x| x.is_finite() && dir * (x - t0) > 0.0 && dir * (t_end - x) > 0.0 && !(save_at.land && g.contains(&x)))
                .map(|x| (x, true))
                .collect();
            if save_at.land && n_out > 2 {
                stops.extend(g[1..n_out - 1].iter().map(|&x| (x, false)));
            }
            stops.push((t_end, false));
            stops.sort_by(|a, b| (dir * a.0).total_cmp(&(dir * b.0)));
            stops.dedup_by(|a, b| a.0 == b.0);
            Lane {
                t0,
                t: t0,
                h: 0.0,
                dir,
                memory: controller.memory(),
                next_out: 1,
                have_k0: false,
                attempts: 0,
                last_nonfinite: false,
                last_failure: None,
                next_stop: 0,
                stops,
                done: n_out <= 1,
                g: vec![0.0; ne],
                g_ready: false,
                pending: None,
            }
        })
        .collect();
    let fail = |lane: &mut Lane<C::Memory>, res: &mut LaneResult<L::Lane>, e: SolveError| {
        lane.done = true;
        res.status = Some(e);
    };
    for r in 0..n_lanes {
        if !ctl[r].done && !lanes.initial_finite(r) {
            let e = SolveError::NonFinite { what: "initial state", t: ctl[r].t0, h: 0.0, step: 0 };
            fail(&mut ctl[r], &mut results[r], e);
            results[r].reached = 0;
        }
    }

    let mut ws = stepper.workspace(lanes);
    // Per-iteration index and value buffers, reused (no allocation in the loop).
    let mut active: Vec<usize> = Vec::with_capacity(n_lanes);
    let mut block: Vec<usize> = Vec::with_capacity(n_lanes);
    let mut times: Vec<f64> = Vec::with_capacity(n_lanes);
    let mut hs: Vec<f64> = Vec::with_capacity(n_lanes);
    let mut ok: Vec<bool> = Vec::with_capacity(n_lanes);
    let mut ratios: Vec<f64> = Vec::with_capacity(n_lanes);
    let mut attempts: Vec<Attempt> = Vec::with_capacity(n_lanes);
    let mut slots: Vec<usize> = Vec::new();
    // Event buffers: one lane's state as f64, event values at the block's step ends, scratch.
    let mut yhost: Vec<f64> = Vec::new();
    let mut g_end: Vec<f64> = Vec::new();
    let mut g_tmp: Vec<f64> = vec![0.0; ne];
    let mut flagged: Vec<bool> = Vec::with_capacity(n_lanes);
    // Bytes stored so far (tapes, dense steps, step records) against `limits.max_memory`.
    let lane_bytes = lanes.lane_bytes();
    let mut stored = 0usize;
    let counting = limits.max_memory > 0 && (record != Record::None || save_at.dense || save_at.steps);

    // First derivatives and first steps of the live lanes, batched.
    active.extend((0..n_lanes).filter(|&r| !ctl[r].done));
    if adaptive && !active.is_empty() {
        first_stages(lanes, &active, &mut ctl, &mut results, &mut times, &mut ok);
        active.retain(|&r| !ctl[r].done);
        match controller.first_step() {
            Some(h) => active.iter().for_each(|&r| ctl[r].h = h),
            None if !active.is_empty() => {
                lanes.load(&active, &mut ws);
                times.clear();
                times.extend(active.iter().map(|&r| ctl[r].t));
                hs.clear();
                hs.extend(active.iter().map(|&r| ctl[r].dir));
                ratios.clear();
                ratios.resize(active.len(), 0.0);
                initial_step(lanes, &mut ws, &times, &hs, order, rtol, atol, &mut ratios);
                lanes.unload(&active, &mut ws);
                for (j, &r) in active.iter().enumerate() {
                    ctl[r].h = ratios[j];
                    results[r].stats.nfe += 1;
                }
            }
            None => {}
        }
    }

    loop {
        active.clear();
        active.extend((0..n_lanes).filter(|&r| !ctl[r].done));
        if active.is_empty() {
            break;
        }
        for &r in &active {
            if ctl[r].attempts >= limits.max_steps {
                let e = SolveError::MaxStepsExceeded { t: ctl[r].t, max_steps: limits.max_steps };
                fail(&mut ctl[r], &mut results[r], e);
            }
        }
        block.clear();
        block.extend(active.iter().copied().filter(|&r| !ctl[r].done && !ctl[r].have_k0));
        if !block.is_empty() {
            first_stages(lanes, &block, &mut ctl, &mut results, &mut times, &mut ok);
        }
        // Each live lane's step: the controller's proposal, shortened to land on its next stop.
        block.clear();
        attempts.clear();
        for &r in &active {
            let lane = &mut ctl[r];
            if lane.done {
                continue;
            }
            let (stop_at, mut user_stop) = lane.stops[lane.next_stop];
            let (mut stop, mut resume) = match (user_stop, lane.dir > 0.0) {
                (false, _) => (stop_at, stop_at),
                (true, true) => (stop_at.next_down(), stop_at.next_up()),
                (true, false) => (stop_at.next_up(), stop_at.next_down()),
            };
            // A located event comes first: land exactly on its time.
            let mut event = None;
            if let Some((e, te)) = lane.pending {
                if lane.dir * (te - stop_at) <= 0.0 {
                    (stop, resume, user_stop, event) = (te, te, false, Some(e));
                }
            }
            let mut h = controller.propose(&mut lane.memory, lane.t0, lane.t, lane.dir, lane.h);
            let remaining = stop - lane.t;
            // Land on the stop if the step reaches it, or would leave a sliver under 1e-10 of a step.
            let landing = lane.dir * (h - remaining) >= -1e-10 * h.abs();
            if landing {
                h = remaining;
            }
            if adaptive && !landing && (!h.is_finite() || h.abs() < controller.dt_min() || lane.t + h == lane.t) {
                let first = results[r].stats.accepted == 0 && results[r].stats.rejected == 0;
                let e = if first && (h == 0.0 || !h.is_finite()) {
                    SolveError::NoFirstStep { t: lane.t, h }
                } else if let Some(why) = lane.last_failure.take() {
                    SolveError::ImplicitStep { t: lane.t, h, reason: why.to_string() }
                } else if lane.last_nonfinite {
                    SolveError::NonFinite { what: "state", t: lane.t, h, step: results[r].stats.accepted }
                } else {
                    SolveError::StepSizeUnderflow { t: lane.t, h, min: controller.dt_min().max(lane.t.abs() * f64::EPSILON) }
                };
                fail(lane, &mut results[r], e);
                continue;
            }
            block.push(r);
            attempts.push(Attempt {
                h,
                landing,
                stop,
                resume,
                user_stop,
                accept: false,
                factor: 1.0,
                event: if landing { event } else { None },
            });
        }
        if block.is_empty() {
            continue;
        }
        let nb = block.len();
        lanes.load(&block, &mut ws);
        if ne > 0 {
            yhost.resize(lanes.lane_width(&ws.y), 0.0);
            g_end.clear();
            g_end.resize(nb * ne, 0.0);
            flagged.clear();
            flagged.resize(nb, false);
            for (j, &r) in block.iter().enumerate() {
                if !ctl[r].g_ready {
                    lanes.lane_to_f64(j, &ws.y, &mut yhost);
                    events.eval(r, ctl[r].t, &yhost, &mut ctl[r].g);
                    ctl[r].g_ready = true;
                }
            }
        }
        times.clear();
        times.extend(block.iter().map(|&r| ctl[r].t));
        hs.clear();
        hs.extend(attempts.iter().map(|a| a.h));
        let evals = stepper.step(lanes, &mut ws, &times, &hs);
        let work = std::mem::take(&mut ws.host.work);
        ok.clear();
        ok.resize(nb, false);
        lanes.finite(&ws.y1, &mut ok);
        ratios.clear();
        ratios.resize(nb, f64::NAN);
        if adaptive && ok.iter().any(|&f| f) {
            stepper.error_ratios(lanes, &mut ws, &hs, rtol, atol, &mut ratios);
        }
        // Accept or reject each lane's step.
        let mut want_dense = false;
        for (j, &r) in block.iter().enumerate() {
            let (lane, res, at) = (&mut ctl[r], &mut results[r], &mut attempts[j]);
            res.stats.nfe += evals;
            res.stats.jacobians += work.jacobians;
            res.stats.factorisations += work.factorisations;
            res.stats.newton_iterations += work.newton_iterations;
            res.stats.linear_iterations += work.linear_iterations;
            lane.attempts += 1;
            if let Some(why) = ws.host.failed.get(j).cloned().flatten() {
                // The implicit solve failed: retry at a quarter of the step (fixed steps fail).
                if !adaptive {
                    let e = SolveError::ImplicitStep { t: lane.t, h: at.h, reason: why.to_string() };
                    fail(lane, res, e);
                    continue;
                }
                res.stats.rejected += 1;
                lane.h = at.h.abs() * 0.25;
                lane.last_failure = Some(why);
                at.accept = false;
                continue;
            }
            lane.last_failure = None;
            if !adaptive && !ok[j] {
                let e = SolveError::NonFinite { what: "state", t: lane.t + at.h, h: at.h, step: res.stats.accepted };
                fail(lane, res, e);
                continue;
            }
            let ratio = if ok[j] { ratios[j] } else { f64::NAN };
            let d = controller.decide(&mut lane.memory, ratio, order);
            lane.last_nonfinite = adaptive && !ratio.is_finite();
            (at.accept, at.factor) = (d.accept, d.factor);
            if !d.accept {
                res.stats.rejected += 1;
                lane.h = at.h.abs() * d.factor;
                continue;
            }
            res.stats.accepted += 1;
            let t1 = if at.landing { at.stop } else { lane.t + at.h };
            if ne > 0 {
                // Event values at the step's end; a crossing needs the interpolant to locate.
                let ge = &mut g_end[j * ne..(j + 1) * ne];
                lanes.lane_to_f64(j, &ws.y1, &mut yhost);
                events.eval(r, t1, &yhost, ge);
                let crossing = |e: usize| {
                    let d = events.kind(e).direction;
                    crosses(d, lane.g[e], ge[e]) || crosses_from_zero(d, lane.g[e], ge[e])
                };
                if (0..ne).any(|e| Some(e) != at.event && crossing(e)) {
                    flagged[j] = true;
                    want_dense = true;
                }
            }
            let g = save_at.times.of(r);
            let mut o = lane.next_out;
            while o < n_out && lane.dir * (g[o] - t1) <= 0.0 {
                want_dense |= g[o] != t1;
                o += 1;
            }
            want_dense |= save_at.dense;
        }
        let dense_ready = want_dense && {
            let extra = stepper.prepare_dense(lanes, &mut ws, &times, &hs);
            block.iter().for_each(|&r| results[r].stats.nfe += extra);
            true
        };
        if save_at.dense {
            stepper.dense_slots(&mut slots);
        }
        // Locate crossings on the interpolant: the earliest root either fires now (at the
        // step's end) or becomes the stop the lane's retaken step lands on.
        if ne > 0 && flagged.iter().any(|&f| f) {
            for (j, &r) in block.iter().enumerate() {
                if !flagged[j] {
                    continue;
                }
                let (lane, res, at) = (&mut ctl[r], &mut results[r], &mut attempts[j]);
                let mut best: Option<(f64, usize)> = None;
                for e in 0..ne {
                    let (g0, g1) = (lane.g[e], g_end[j * ne + e]);
                    let direction = events.kind(e).direction;
                    let from_zero = crosses_from_zero(direction, g0, g1);
                    if Some(e) == at.event || !(from_zero || crosses(direction, g0, g1)) {
                        continue;
                    }
                    let (t0, h) = (lane.t, at.h);
                    let mut g_at = |theta: f64| {
                        stepper.interpolate(lanes, &mut ws, j, theta, h);
                        lanes.lane_to_f64(j, &ws.out, &mut yhost);
                        events.eval(r, t0 + theta * h, &yhost, &mut g_tmp);
                        g_tmp[e]
                    };
                    // From a zero (an event that just fired, or a start on the surface), the
                    // crossing is bracketed by scanning the interpolant for where g left zero.
                    let ((a, ga), (b, gb)) = if from_zero {
                        let mut before: Option<(f64, f64)> = None;
                        let mut bracket = None;
                        for i in 1..=SCAN {
                            let theta = i as f64 / SCAN as f64;
                            let gt = if i == SCAN { g1 } else { g_at(theta) };
                            if gt != 0.0 && (gt > 0.0) != (g1 > 0.0) {
                                before = Some((theta, gt));
                            } else if let Some(p) = before.filter(|_| crosses(direction, before.map_or(0.0, |q| q.1), gt)) {
                                bracket = Some((p, (theta, gt)));
                                break;
                            }
                        }
                        match bracket {
                            Some(br) => br,
                            None => continue,
                        }
                    } else {
                        ((0.0, g0), (1.0, g1))
                    };
                    let s = locate_root(|s| g_at(a + s * (b - a)), ga, gb, event_tol / (h.abs() * (b - a)));
                    let theta = if s >= 1.0 { b } else { a + s * (b - a) };
                    if best.is_none_or(|(b, _)| theta < b) {
                        best = Some((theta, e));
                    }
                }
                let Some((theta, e)) = best else { continue };
                if theta >= 1.0 {
                    at.event = Some(e);
                } else {
                    lane.pending = Some((e, lane.t + theta * at.h));
                    at.accept = false;
                    res.stats.accepted -= 1;
                    lane.h = at.h.abs();
                }
            }
        }
        // Record, then advance the accepted lanes.
        for (j, &r) in block.iter().enumerate() {
            let (lane, res, at) = (&mut ctl[r], &mut results[r], attempts[j]);
            if !at.accept {
                continue;
            }
            let t1 = if at.landing { at.stop } else { lane.t + at.h };
            let step_index = res.stats.accepted - 1;
            if counting {
                stored = stored.saturating_add(stored_bytes(res, step_index, lane_bytes, slots.len()));
                if stored > limits.max_memory {
                    let e = memory_limit(res, limits.max_memory, lane.t, step_index);
                    fail(lane, res, e);
                    continue;
                }
            }
            if let Some(tp) = res.tape.as_mut() {
                if step_index % tp.every == 0 {
                    tp.checkpoints.push(lanes.lane(j, &ws.y));
                    tp.checkpoint_times.push(lane.t);
                }
                if tp.step_records {
                    tp.steps.push(StepRecord { t: lane.t, h: at.h });
                }
            }
            let g = save_at.times.of(r);
            while lane.next_out < n_out && lane.dir * (g[lane.next_out] - t1) <= 0.0 {
                let to = g[lane.next_out];
                let theta = if to == t1 { 1.0 } else { (to - lane.t) / at.h };
                if theta >= 1.0 {
                    lanes.record(lane.next_out, j, r, &ws.y1);
                } else {
                    stepper.interpolate(lanes, &mut ws, j, theta, at.h);
                    lanes.record(lane.next_out, j, r, &ws.out);
                }
                if let Some(tp) = res.tape.as_mut().filter(|tp| tp.step_records) {
                    tp.outputs.push(OutputAt { step: step_index, index: lane.next_out, theta: theta.min(1.0) });
                }
                lane.next_out += 1;
            }
            res.reached = lane.next_out;
            if let Some(d) = res.dense.as_mut() {
                let k = slots.iter().map(|&s| lanes.lane(j, &ws.k[s])).collect();
                d.push(DenseStep { t: lane.t, h: at.h, y0: lanes.lane(j, &ws.y), y1: lanes.lane(j, &ws.y1), k });
            }
            if let Some(s) = res.steps.as_mut() {
                s.push((t1, lanes.lane(j, &ws.y1)));
            }
            // An event at the step's end: record it, and stop or jump.
            let (mut jumped, mut stopped) = (false, false);
            if let Some(e) = at.event {
                lanes.lane_to_f64(j, &ws.y1, &mut yhost);
                let action = events.kind(e).action;
                let mut hit = EventHit { event: e, t: t1, step: step_index, action, y_minus: yhost.clone(), y_plus: None };
                match action {
                    Action::Stop => stopped = true,
                    Action::Jump => {
                        events.jump(r, e, t1, &mut yhost);
                        lanes.lane_from_f64(j, &mut ws.y1, &yhost);
                        hit.y_plus = Some(yhost.clone());
                        jumped = true;
                    }
                    Action::Record => {}
                }
                res.hits.push(hit);
                lane.pending = None;
                events.eval(r, t1, &yhost, &mut lane.g);
                lane.g[e] = 0.0;
            } else if ne > 0 {
                lane.g.copy_from_slice(&g_end[j * ne..(j + 1) * ne]);
            }
            // The derivative at the new state carries over, unless the step lands on a user
            // stop (the next step starts one ulp past it) or the state jumped.
            let end = if jumped || (at.landing && at.user_stop) { None } else { stepper.end_derivative(dense_ready) };
            lanes.advance(j, r, &mut ws, end);
            lane.have_k0 = end.is_some();
            lane.t = if at.landing { at.resume } else { t1 };
            if at.landing && (at.event.is_none() || lane.stops.get(lane.next_stop).is_some_and(|s| s.0 == t1)) {
                lane.next_stop += 1;
            }
            if adaptive {
                lane.h = at.h.abs() * at.factor;
            }
            if lane.next_out >= n_out || stopped {
                lane.done = true;
            }
        }
        lanes.unload(&block, &mut ws);
        if save_at.land {
            for (j, &r) in block.iter().enumerate() {
                let lane = &mut ctl[r];
                let idx = lane.next_out - 1;
                if attempts[j].accept && attempts[j].landing && save_at.times.of(r)[idx] == lane.t && lanes.at_output(r, idx, lane.t) {
                    lane.have_k0 = false;
                }
            }
        }
    }
    Ok(results)
}

/// Samples of the interpolant that bracket a crossing starting from `g = 0`.
const SCAN: usize = 16;

/// Bytes an accepted step adds to what lane `res` stores: a tape entry (and a checkpoint state
/// every `every` steps), a dense step, a step record.
#[inline(never)]
fn stored_bytes<Y>(res: &LaneResult<Y>, step_index: usize, lane_bytes: usize, dense_slots: usize) -> usize {
    let mut add = 0usize;
    if let Some(tp) = res.tape.as_ref() {
        if tp.step_records {
            add += std::mem::size_of::<StepRecord>();
        }
        if step_index % tp.every == 0 {
            add += lane_bytes + std::mem::size_of::<f64>();
        }
    }
    if res.dense.is_some() {
        add += lane_bytes * (2 + dense_slots);
    }
    if res.steps.is_some() {
        add += lane_bytes + 8;
    }
    add
}

/// The error of a lane whose stored states passed `limit`.
#[cold]
fn memory_limit<Y>(res: &LaneResult<Y>, limit: usize, t: f64, step: usize) -> SolveError {
    let (what, hint) = if res.tape.is_some() {
        ("the gradient tape", "store fewer states: checkpoint every M steps (checkpoint:M) or use the adjoint, or raise the memory limit")
    } else if res.dense.is_some() {
        ("the dense output", "ask for fewer outputs or raise the memory limit")
    } else {
        ("the step records", "ask for fewer outputs or raise the memory limit")
    };
    SolveError::MemoryLimit { what, limit, t, step, hint }
}

/// Evaluate and cache the first stage of `which` lanes; lanes whose derivative is not finite fail.
fn first_stages<L: Lanes, M>(
    lanes: &mut L,
    which: &[usize],
    ctl: &mut [Lane<M>],
    results: &mut [LaneResult<L::Lane>],
    times: &mut Vec<f64>,
    ok: &mut Vec<bool>,
) {
    times.clear();
    times.extend(which.iter().map(|&r| ctl[r].t));
    ok.clear();
    ok.resize(which.len(), false);
    lanes.first_stages(which, times, ok);
    for (j, &r) in which.iter().enumerate() {
        let (lane, res) = (&mut ctl[r], &mut results[r]);
        res.stats.nfe += 1;
        lane.have_k0 = true;
        if !ok[j] {
            lane.done = true;
            res.status = Some(SolveError::NonFinite { what: "derivative", t: lane.t, h: lane.h, step: res.stats.accepted });
        }
    }
}

/// The joint solve of `f` under `opts`: one lane over the whole state.
fn solve_joint<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
    save_at: &SaveAt<'_>,
    record: Record,
) -> SolveResult<S, LaneResult<S>> {
    let mut lanes = Joint::new(f, norm, y0, None);
    let out = diffeqsolve(&mut lanes, &opts.stepper(), &opts.control(), save_at, &opts.limits(), record);
    finish_joint(lanes.ys, ts, out)
}

/// Turn the one lane's result into a solution or a failure with the partial solution.
pub(crate) fn finish_joint<S>(ys: Vec<S>, ts: &[f64], out: Result<Vec<LaneResult<S>>, SolveError>) -> SolveResult<S, LaneResult<S>> {
    let fail = |error, ys: Vec<S>, stats| {
        let n = ys.len();
        Box::new(SolveFailure { error, partial: Solution { ts: ts[..n].to_vec(), ys, stats } })
    };
    let mut res = match out {
        Ok(r) => r,
        Err(e) => return Err(fail(e, Vec::new(), Stats::default())),
    };
    let lane = res.pop().expect("one lane");
    match lane.status.clone() {
        Some(e) => {
            let mut ys = ys;
            // A lane that failed on its initial state reached no output.
            ys.truncate(lane.reached);
            Err(fail(e, ys, lane.stats))
        }
        None => Ok((Solution { ts: ts.to_vec(), ys, stats: lane.stats }, lane)),
    }
}

/// Solve `dy/dt = f(t, y)`, `y(ts[0]) = y0`, returning `y` at every time in `ts` (ascending or
/// descending), as one joint lane under `opts` with error norm `norm`.
pub fn solve<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
) -> Result<Solution<S>, Box<SolveFailure<S>>> {
    solve_recorded(f, y0, ts, opts, norm, Record::None).map(|(s, _)| s)
}

/// Solve like [`solve`] and keep the tape `record` asks for (see [`crate::grad`]).
pub fn solve_recorded<S: State, D: Dynamics<S>, N: ErrorNorm<S>>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
    record: Record,
) -> SolveResult<S, Option<Tape<S>>> {
    solve_joint(f, y0, ts, opts, norm, &SaveAt::times(ts), record).map(|(s, l)| (s, l.tape))
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
) -> SolveResult<S, DenseSolution<S>> {
    let (sol, lane) = solve_joint(f, y0, ts, opts, norm, &SaveAt::times(ts).with_dense(), Record::None)?;
    Ok((sol, DenseSolution { stepper: opts.stepper(), steps: lane.dense.unwrap_or_default() }))
}

/// The controller `opts` describe.
impl SolveOptions {
    /// The step-size controller of these options.
    pub fn control(&self) -> StepControl {
        match self.step {
            crate::options::StepMode::Fixed(h) => StepControl::Constant(crate::controller::ConstantStep { h }),
            crate::options::StepMode::Adaptive => StepControl::Adaptive(crate::controller::Adaptive {
                rtol: self.rtol,
                atol: self.atol,
                pid: self.controller,
                first_step: self.first_step,
                dt_min: self.dt_min,
                dt_max: self.dt_max,
            }),
        }
    }
    /// The loop limits of these options.
    pub fn limits(&self) -> Limits {
        Limits { max_steps: self.max_steps, tstops: self.tstops.clone(), max_memory: self.max_memory }
    }
}
