//! The bouncing ball: the reference hybrid system, with closed-form impacts.
//!
//! State `y = [height, velocity]`, `dy/dt = [v, -g]`; the event `g_0 = height` falls through
//! zero at an impact, where the velocity jumps to `v+ = -e v-` (restitution `e`). Parameters
//! `θ = [g, e]`, so gradients reach both the flight (`g`) and the bounce (`e`).
//!
//! From `(h0, v0)` the first impact is at `t_1 = (v0 + w) / g` with impact speed
//! `w = sqrt(v0² + 2 g h0)`; every later flight leaves at `e^k w` and lasts `2 e^k w / g`
//! ([`impact_times`], [`height`]). The impacts accumulate at [`zeno_time`]: the model has no
//! resting contact, so past that time the flights become shorter than any step resolves and the
//! ball falls through the floor. Keep spans before it.

use super::{Action, Direction, EventKind, Events};
use crate::dynamics::{Dynamics, VjpDynamics};
use crate::grad::events::EventVjp;
use crate::lanes::RowDynamics;

/// A ball under gravity `g` that bounces off the floor `height = 0` with restitution `e`; the
/// impact either bounces ([`Action::Jump`]) or ends the solve ([`Action::Stop`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BouncingBall {
    /// Gravity `g` (> 0).
    pub gravity: f64,
    /// Restitution `e` (in `[0, 1)`).
    pub restitution: f64,
    /// [`Action::Jump`] (bounce) or [`Action::Stop`] (stop at the first impact).
    pub impact: Action,
    /// Root-location tolerance in time.
    pub time_tol: f64,
}

impl BouncingBall {
    /// A bouncing ball with root location to `1e-13`.
    pub fn new(gravity: f64, restitution: f64) -> Self {
        Self { gravity, restitution, impact: Action::Jump, time_tol: 1e-13 }
    }
}

impl Dynamics<Vec<f64>> for BouncingBall {
    fn eval(&mut self, _t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        dy[0] = y[1];
        dy[1] = -self.gravity;
    }
}

impl VjpDynamics<Vec<f64>> for BouncingBall {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        vec![0.0; 2]
    }
    fn vjp(&mut self, _t: f64, _y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        adj_y[0] = 0.0;
        adj_y[1] = a[0];
        adj_p[0] -= a[1];
    }
}

/// Rows `[height, velocity]` of a batch, each its own ball (per-sample solving).
impl RowDynamics<f64> for BouncingBall {
    fn eval_rows(&mut self, _t: &[f64], y: &[f64], dy: &mut [f64]) {
        for (yr, dr) in y.chunks_exact(2).zip(dy.chunks_exact_mut(2)) {
            dr[0] = yr[1];
            dr[1] = -self.gravity;
        }
    }
}

impl Events for BouncingBall {
    fn count(&self) -> usize {
        1
    }
    fn kind(&self, _e: usize) -> EventKind {
        EventKind { direction: Direction::Falling, action: self.impact }
    }
    fn eval(&mut self, _lane: usize, _t: f64, y: &[f64], g: &mut [f64]) {
        g[0] = y[0];
    }
    fn jump(&mut self, _lane: usize, _e: usize, _t: f64, y: &mut [f64]) {
        y[1] *= -self.restitution;
    }
    fn time_tolerance(&self) -> f64 {
        self.time_tol
    }
}

impl EventVjp for BouncingBall {
    fn grad(&mut self, _lane: usize, _e: usize, _t: f64, _y: &[f64], gy: &mut [f64]) -> f64 {
        gy[0] = 1.0;
        gy[1] = 0.0;
        0.0
    }
    fn jump_vjp(&mut self, _lane: usize, _e: usize, _t: f64, y_minus: &[f64], a_plus: &[f64], a_minus: &mut [f64], pbar: &mut [f64]) {
        a_minus[0] = a_plus[0];
        a_minus[1] = -self.restitution * a_plus[1];
        pbar[1] -= y_minus[1] * a_plus[1];
    }
}

/// The first `n` impact times of a ball dropped from `(h0, v0)` (closed form).
pub fn impact_times(h0: f64, v0: f64, g: f64, e: f64, n: usize) -> Vec<f64> {
    let w = (v0 * v0 + 2.0 * g * h0).sqrt();
    let mut t = (v0 + w) / g;
    let mut out = Vec::with_capacity(n);
    let mut speed = w;
    for _ in 0..n {
        out.push(t);
        speed *= e;
        t += 2.0 * speed / g;
    }
    out
}

/// Where the impacts of a ball dropped from `(h0, v0)` accumulate (Zeno time):
/// `t_1 + 2 w e / (g (1 - e))`.
pub fn zeno_time(h0: f64, v0: f64, g: f64, e: f64) -> f64 {
    let w = (v0 * v0 + 2.0 * g * h0).sqrt();
    (v0 + w) / g + 2.0 * w * e / (g * (1.0 - e))
}

/// Height of the ball at time `t` (closed form; bounces with restitution `e` for ever).
pub fn height(t: f64, h0: f64, v0: f64, g: f64, e: f64) -> f64 {
    let w = (v0 * v0 + 2.0 * g * h0).sqrt();
    let t1 = (v0 + w) / g;
    if t <= t1 {
        return h0 + v0 * t - 0.5 * g * t * t;
    }
    let (mut start, mut speed) = (t1, w * e);
    loop {
        let flight = 2.0 * speed / g;
        if t <= start + flight || flight <= 0.0 {
            let s = t - start;
            return speed * s - 0.5 * g * s * s;
        }
        start += flight;
        speed *= e;
    }
}
