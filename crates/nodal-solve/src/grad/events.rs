//! Exact gradients through solves with events: the discrete adjoint of the steps between
//! events, joined at every event by the implicit function theorem for its time.
//!
//! At an event, `g(t*, y(t*-)) = 0` defines `t*` as a function of everything before it, with
//! `dt* = -(∂g/∂y · dy(t*-) + ∂g/∂θ · dθ) / ġ`, `ġ = ∂g/∂t + ∂g/∂y · f(t*, y(t*-))` (Chen, Amos and
//! Nickel 2021). Going backwards through a hit with state update `y+ = u(t*, y-, θ)`:
//!
//! ```text
//! a-     = (∂u/∂y)^T a+ + ybar_hit + (outputs exactly at t*)      θbar += (∂u/∂θ)^T a+
//! tbar   = tbar_hit - a+ · f(t*, y+)        (the later segment starts at t*; 0 after a stop)
//! λ      = (a- · f(t*, y-) + tbar) / ġ
//! a(t*-) = a- - λ ∂g/∂y                     θbar -= λ ∂g/∂θ
//! ```
//!
//! and the steps before the event are reversed from `a(t*-)` as usual. The `a- · f` term is
//! what moving the event moves the state by; the step that lands on `t*` is otherwise treated
//! with a constant step size, like every step of the discrete adjoint. Where the event time
//! depends on nothing the loss sees, `λ` is zero and the gradient is that of the steps alone.

use super::Gradients;
use super::discrete::{StepAdjoint, step_backward};
use crate::dynamics::VjpDynamics;
use crate::error::SolveError;
use crate::events::{Action, EventHit, Events};
use crate::options::SolveOptions;
use crate::solution::{OutputAt, Tape};
use crate::state::State;
use crate::stats::Stats;
use crate::stepper::{ExplicitRk, MethodStepper, Stepper, Workspace};

/// Event functions and state updates that provide the derivatives the event adjoint needs.
pub trait EventVjp: Events {
    /// `∂g_e/∂y` at `(t, y)` into `gy`; returns `∂g_e/∂t`.
    fn grad(&mut self, lane: usize, e: usize, t: f64, y: &[f64], gy: &mut [f64]) -> f64;
    /// `pbar += scale · ∂g_e/∂θ` (parameters flattened as the dynamics' `Params`; nothing when
    /// the event function has no parameters).
    fn param_grad(&mut self, _lane: usize, _e: usize, _t: f64, _y: &[f64], _scale: f64, _pbar: &mut [f64]) {}
    /// For [`Action::Jump`] events: `a_minus <- (∂u/∂y)^T a_plus` and `pbar += (∂u/∂θ)^T a_plus`
    /// at `y_minus`. The default is the identity update.
    fn jump_vjp(&mut self, _lane: usize, _e: usize, _t: f64, _y_minus: &[f64], a_plus: &[f64], a_minus: &mut [f64], _pbar: &mut [f64]) {
        a_minus.copy_from_slice(a_plus);
    }
}

/// Cotangents of the loss with respect to one event's time and state `y(t*-)`.
#[derive(Debug, Clone, Default)]
pub struct HitCotangent {
    /// `dL/dt*`.
    pub t: f64,
    /// `dL/dy(t*-)` (empty for none).
    pub y: Vec<f64>,
}

/// Gradients of `L(outputs, event times, event states)` for a solve with events, recorded with
/// [`crate::Record::Every`]`(1)` by an explicit Runge-Kutta method.
///
/// `ybar[k]` is `dL/dy(t_k)` for every output reached (`ys.len()` of them), `hit_bars` one
/// cotangent per hit (or none at all), `lane` the lane the events saw (0 in the joint mode, the
/// row in per-sample mode). Returns `dL/dy0` and `dL/dθ` (the dynamics' parameters, which also
/// index the event functions' and updates' parameters).
#[allow(clippy::too_many_arguments)]
pub fn event_gradients<S: State, D: VjpDynamics<S>, E: EventVjp>(
    f: &mut D,
    events: &mut E,
    lane: usize,
    opts: &SolveOptions,
    tape: &Tape<S>,
    hits: &[EventHit],
    y0: &S,
    ybar: &[S],
    hit_bars: &[HitCotangent],
) -> Result<Gradients<S, D::Params>, SolveError> {
    let tab = match opts.stepper() {
        MethodStepper::Explicit(rk) => rk.tableau,
        _ => return Err(SolveError::InvalidStep("gradients through events are implemented for explicit Runge-Kutta methods".into())),
    };
    if tape.every != 1 || !tape.step_records {
        return Err(SolveError::InvalidStep(
            "gradients through events need every step's state: record with Record::Every(1) (backprop)".into(),
        ));
    }
    if !hit_bars.is_empty() && hit_bars.len() != hits.len() {
        return Err(SolveError::Shape(format!("{} event cotangents for {} events", hit_bars.len(), hits.len())));
    }
    let mut stats = Stats::default();
    let mut pbar = f.param_zeros();
    let mut pflat = vec![0.0; pbar.len()];
    let mut abar = y0.zeros_like();
    let stepper = ExplicitRk::new(tab);
    let (n_k, n_scratch) = stepper.buffers();
    let mut ws = Workspace::new(n_k, n_scratch, 1, || y0.zeros_like());
    let mut sa = StepAdjoint::new(tab, y0);
    let n_y = y0.len();
    let (mut a_plus, mut a_minus, mut gy) = (vec![0.0; n_y], vec![0.0; n_y], vec![0.0; n_y]);
    let (mut fy, mut ystate) = (y0.zeros_like(), y0.zeros_like());
    let (mut f_host, mut yo_host) = (vec![0.0; n_y], vec![0.0; n_y]);
    let mut out_end = tape.outputs.len();
    let mut hit_idx = hits.len();
    let mut interior: Vec<(f64, &S)> = Vec::new();
    for j in (0..tape.steps.len()).rev() {
        let st = tape.steps[j];
        let mut out_begin = out_end;
        while out_begin > 0 && tape.outputs[out_begin - 1].step == j {
            out_begin -= 1;
        }
        let mut end_outputs_done = false;
        if hit_idx > 0 && hits[hit_idx - 1].step == j {
            let hit = &hits[hit_idx - 1];
            let bar = hit_bars.get(hit_idx - 1);
            let t = hit.t;
            abar.write_f64(&mut a_plus);
            // What the rest of the solve's dependence on its start time adds.
            let mut tbar = bar.map_or(0.0, |b| b.t);
            if hit.action != Action::Stop {
                let y_plus = hit.y_plus.as_deref().unwrap_or(&hit.y_minus);
                ystate.read_f64(y_plus);
                f.eval(t, &ystate, &mut fy);
                stats.nfe += 1;
                fy.write_f64(&mut f_host);
                tbar -= dot(&a_plus, &f_host);
            }
            match hit.action {
                Action::Jump => events.jump_vjp(lane, hit.event, t, &hit.y_minus, &a_plus, &mut a_minus, &mut pflat),
                _ => a_minus.copy_from_slice(&a_plus),
            }
            if let Some(b) = bar.filter(|b| !b.y.is_empty()) {
                a_minus.iter_mut().zip(&b.y).for_each(|(a, v)| *a += v);
            }
            for o in &tape.outputs[out_begin..out_end] {
                if o.theta >= 1.0 {
                    ybar[o.index].write_f64(&mut yo_host);
                    a_minus.iter_mut().zip(&yo_host).for_each(|(a, v)| *a += v);
                }
            }
            end_outputs_done = true;
            // The implicit-function-theorem term for the event time.
            ystate.read_f64(&hit.y_minus);
            f.eval(t, &ystate, &mut fy);
            stats.nfe += 1;
            fy.write_f64(&mut f_host);
            let g_t = events.grad(lane, hit.event, t, &hit.y_minus, &mut gy);
            let slope = g_t + dot(&gy, &f_host);
            let lambda = (dot(&a_minus, &f_host) + tbar) / slope;
            if lambda != 0.0 {
                if !slope.is_finite() || slope == 0.0 || !lambda.is_finite() {
                    return Err(SolveError::EventTangent { event: hit.event, t, slope });
                }
                a_minus.iter_mut().zip(&gy).for_each(|(a, g)| *a -= lambda * g);
                events.param_grad(lane, hit.event, t, &hit.y_minus, -lambda, &mut pflat);
            }
            abar.read_f64(&a_minus);
            hit_idx -= 1;
        }
        interior.clear();
        for o in &tape.outputs[out_begin..out_end] {
            let OutputAt { index, theta, .. } = *o;
            if theta >= 1.0 {
                if !end_outputs_done {
                    abar.axpy(1.0, &ybar[index]);
                }
            } else {
                interior.push((theta, &ybar[index]));
            }
        }
        out_end = out_begin;
        step_backward(tab, f, st.t, st.h, &tape.checkpoints[j], &interior, &mut abar, &mut pbar, &mut ws, &mut sa, &mut stats);
    }
    abar.axpy(1.0, &ybar[0]);
    if pflat.iter().any(|&v| v != 0.0) {
        let mut p = vec![0.0; pbar.len()];
        pbar.write_f64(&mut p);
        p.iter_mut().zip(&pflat).for_each(|(a, b)| *a += b);
        pbar.read_f64(&p);
    }
    Ok(Gradients { y0: abar, params: pbar, ts: None, stats, reconstruction_error: None })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
