//! Events: times where a function of the state crosses zero, found inside the integration loop.
//!
//! An event function `g_e(t, y)` (one or more per lane) is checked after every accepted step:
//! a sign change between the step's start and end (in the event's [`Direction`]) means a root
//! `t*` inside the step. The loop locates it on the step's interpolant (the solver's dense
//! output) by the Illinois variant of regula falsi, to `|Δt| <= `[`Events::time_tolerance`]
//! (default `1e-12`), then **discards the step and retakes it to land exactly on `t*`**: the
//! state at the event is the solver's own step result, not an interpolated one, and the
//! gradient tape sees ordinary steps. At `t*` the event's [`Action`] runs:
//!
//! - [`Action::Stop`]: the lane ends at `t*` (terminal event); outputs after it are not reached;
//! - [`Action::Jump`]: [`Events::jump`] changes the state (a bounce, a reset), the cached
//!   derivative is dropped and the lane goes on from `(t*, y+)`;
//! - [`Action::Record`]: the time and state are recorded and the lane goes on.
//!
//! Every firing is an [`EventHit`] in the lane's result. Lanes are independent: in per-sample
//! mode each row finds, stops at or jumps at its own events while the others go on.
//!
//! After an event fires, its own function is taken as exactly zero at `t*` (no chattering on
//! `g(y+) ≈ 0`): a later crossing is bracketed by sampling the next step's interpolant at 16
//! points for where `g` has left zero, so a whole flight inside one step (a ball's parabola is
//! integrated exactly, and its steps grow) is still caught. Other events are checked from their
//! values at `y+`. A root where `g` touches zero without changing sign, or two crossings
//! between the same pair of samples, are not detected (as in every sign-change locator).
//!
//! Event times are differentiable: [`crate::grad::events`] adds the implicit-function-theorem
//! term `dt*/dθ = -(∂g/∂θ + ∂g/∂y · ∂y/∂θ) / (∂g/∂t + ∂g/∂y · f)` at every hit to the discrete
//! adjoint of the steps (Chen, Amos and Nickel 2021, "Learning neural event functions for
//! ordinary differential equations").

pub mod ball;
mod solve;

pub use solve::{EventSolution, RowEventSolution, solve_per_sample_with_events, solve_with_events};

/// Which sign changes of `g` count as an event, along the direction of integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `g` goes from negative to zero or positive.
    Rising,
    /// `g` goes from positive to zero or negative (a ball reaching the floor: `g = height`).
    Falling,
    /// Either sign change.
    Either,
}

/// What happens at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The lane stops at the event time (a terminal event).
    Stop,
    /// The state jumps by [`Events::jump`] and the lane goes on.
    Jump,
    /// The hit is recorded and the lane goes on unchanged.
    Record,
}

/// How one event function behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    /// Which crossings count.
    pub direction: Direction,
    /// What a crossing does.
    pub action: Action,
}

/// A set of event functions over each lane's state (seen as `f64` entries; a joint lane is its
/// whole state, a per-sample lane its row).
pub trait Events {
    /// Number of event functions.
    fn count(&self) -> usize;
    /// Direction and action of event `e`.
    fn kind(&self, e: usize) -> EventKind;
    /// `g[e] <- g_e(t, y)` for every event of lane `lane`.
    fn eval(&mut self, lane: usize, t: f64, y: &[f64], g: &mut [f64]);
    /// The state change of event `e` (only called for [`Action::Jump`]): `y` holds `y(t*-)` on
    /// entry and `y(t*+)` on exit.
    fn jump(&mut self, _lane: usize, _e: usize, _t: f64, _y: &mut [f64]) {}
    /// Width of the bracket, in time, that root location stops at.
    fn time_tolerance(&self) -> f64 {
        1e-12
    }
}

/// No events (what [`crate::diffeqsolve`] uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl Events for NoEvents {
    fn count(&self) -> usize {
        0
    }
    fn kind(&self, _e: usize) -> EventKind {
        EventKind { direction: Direction::Either, action: Action::Record }
    }
    fn eval(&mut self, _lane: usize, _t: f64, _y: &[f64], _g: &mut [f64]) {}
}

/// One event that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHit {
    /// Which event function.
    pub event: usize,
    /// The event time `t*`.
    pub t: f64,
    /// Index of the accepted step that ends at `t*` (in the lane's tape).
    pub step: usize,
    /// What the event did.
    pub action: Action,
    /// The state just before the event, `y(t*-)`.
    pub y_minus: Vec<f64>,
    /// The state after a [`Action::Jump`], `y(t*+)`.
    pub y_plus: Option<Vec<f64>>,
}

/// Whether `g` going from `g0` (step start) to `g1` (step end) is a crossing in `direction`.
/// A start value of exactly zero (an event that just fired) never counts.
pub fn crosses(direction: Direction, g0: f64, g1: f64) -> bool {
    if g0 == 0.0 || !g0.is_finite() || !g1.is_finite() {
        return false;
    }
    let falling = g0 > 0.0 && g1 <= 0.0;
    let rising = g0 < 0.0 && g1 >= 0.0;
    match direction {
        Direction::Falling => falling,
        Direction::Rising => rising,
        Direction::Either => falling || rising,
    }
}

/// Whether `g` going from exactly zero (an event that just fired, or a start on the surface) to
/// `g1` may have crossed in `direction` inside the step: `g1` is on the crossed side. The loop
/// then scans the interpolant for where `g` left zero to bracket the crossing.
pub fn crosses_from_zero(direction: Direction, g0: f64, g1: f64) -> bool {
    g0 == 0.0
        && match direction {
            Direction::Falling => g1 < 0.0,
            Direction::Rising => g1 > 0.0,
            Direction::Either => g1 != 0.0,
        }
}

/// A root of `g` on `[0, 1]` given `g(0) = g0` and `g(1) = g1` of opposite signs (or `g1 = 0`),
/// by the Illinois algorithm, stopped when the bracket is narrower than `tol` (or after 200
/// iterations). Returns the bracket's end on `g1`'s side, so the root has been passed there.
pub fn locate_root(mut g: impl FnMut(f64) -> f64, g0: f64, g1: f64, tol: f64) -> f64 {
    let (mut a, mut b, mut ga, mut gb) = (0.0f64, 1.0f64, g0, g1);
    let tol = tol.max(4.0 * f64::EPSILON);
    let mut side = 0i8;
    for _ in 0..200 {
        if b - a <= tol {
            break;
        }
        let mut x = if gb != ga { b - gb * (b - a) / (gb - ga) } else { 0.5 * (a + b) };
        if !(x > a && x < b) {
            x = 0.5 * (a + b);
        }
        let gx = g(x);
        if !gx.is_finite() {
            // Fall back to bisection through a non-finite value.
            b = x;
            gb = g1;
            continue;
        }
        if (gx > 0.0) == (g0 > 0.0) && gx != 0.0 {
            // Root in [x, b].
            a = x;
            ga = gx;
            if side == -1 {
                gb *= 0.5;
            }
            side = -1;
        } else {
            b = x;
            gb = gx;
            if side == 1 {
                ga *= 0.5;
            }
            side = 1;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illinois_finds_roots_to_tolerance() {
        // cos(theta * 3) has its first root at pi / 6 on [0, 1].
        let r = locate_root(|x| (3.0 * x).cos(), 1.0, 3.0f64.cos(), 1e-14);
        assert!((r - std::f64::consts::PI / 6.0).abs() < 1e-13, "{r}");
        assert!((3.0 * r).cos() <= 0.0);
        // A root at the very end.
        let r = locate_root(|x| 1.0 - x, 1.0, 0.0, 1e-14);
        assert!((r - 1.0).abs() < 1e-13);
    }

    #[test]
    fn crossings_follow_direction() {
        assert!(crosses(Direction::Falling, 1.0, -1.0));
        assert!(!crosses(Direction::Falling, -1.0, 1.0));
        assert!(crosses(Direction::Rising, -1.0, 0.0));
        assert!(crosses(Direction::Either, -1.0, 2.0));
        assert!(!crosses(Direction::Either, 0.0, 2.0));
        assert!(!crosses(Direction::Either, 1.0, 2.0));
    }
}
