//! One lane over any [`State`]: a batch solved as one "giant ODE" (one step size for the whole
//! state, the error norm taken over all of it), the adjoint's augmented tuples, regularised
//! states. Moving a state between the loop and the stepper is a pointer swap, never a copy.

use super::{Evaluate, LaneArith, Lanes};
use crate::dynamics::Dynamics;
use crate::norm::ErrorNorm;
use crate::state::State;
use crate::stepper::Workspace;
use std::marker::PhantomData;

/// Called when a hard output time is reached exactly; may modify the state (a jump). Returns
/// whether it did, so that a cached derivative is discarded.
pub type OutputHook<'a, S> = &'a mut dyn FnMut(usize, f64, &mut S) -> bool;

/// Arithmetic of one lane over a [`State`] (block buffers are states).
#[derive(Debug, Clone, Copy, Default)]
pub struct StateArith<S>(PhantomData<fn() -> S>);

impl<S> StateArith<S> {
    /// The arithmetic of `S`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<S: State> LaneArith for StateArith<S> {
    type Buf = S;
    #[inline]
    fn lincomb(&self, out: &mut S, base: &S, hs: &[f64], coeffs: &[f64], ks: &[S]) {
        out.set_lincomb(base, hs[0], coeffs, ks);
    }
    #[inline]
    fn lincomb_lane(&self, _j: usize, out: &mut S, base: &S, h: f64, coeffs: &[f64], ks: &[S]) {
        out.set_lincomb(base, h, coeffs, ks);
    }
    fn combine4_lane(&self, _j: usize, out: &mut S, w: [f64; 4], x: [&S; 4]) {
        out.assign(x[0]);
        out.scale(w[0]);
        for i in 1..4 {
            out.axpy(w[i], x[i]);
        }
    }
    fn lane_width(&self, buf: &S) -> usize {
        buf.len()
    }
    fn lane_to_f64(&self, _j: usize, buf: &S, out: &mut [f64]) {
        buf.write_f64(out);
    }
    fn lane_from_f64(&self, _j: usize, buf: &mut S, src: &[f64]) {
        buf.read_f64(src);
    }
}

/// One lane: dynamics `f` over states `S`, error norm `N`, outputs collected in order.
pub struct Joint<'a, S, D, N> {
    f: &'a mut D,
    norm: &'a N,
    y: S,
    k0: S,
    /// Outputs recorded so far, in order of their index.
    pub ys: Vec<S>,
    hook: Option<OutputHook<'a, S>>,
}

impl<'a, S: State, D: Dynamics<S>, N: ErrorNorm<S>> Joint<'a, S, D, N> {
    /// The lane starting at `y0` (recorded as output 0); `hook` runs at hard output times (see
    /// [`Lanes::at_output`]).
    pub fn new(f: &'a mut D, norm: &'a N, y0: &S, hook: Option<OutputHook<'a, S>>) -> Self {
        Self { f, norm, y: y0.clone(), k0: y0.zeros_like(), ys: vec![y0.clone()], hook }
    }
}

/// [`LaneArith`] of a one-lane type over states `S`: [`StateArith`]'s.
macro_rules! state_lane_arith {
    ($ty:ty, $($gen:tt)*) => {
        impl<$($gen)*> LaneArith for $ty {
            type Buf = S;
            #[inline]
            fn lincomb(&self, out: &mut S, base: &S, hs: &[f64], coeffs: &[f64], ks: &[S]) {
                StateArith::new().lincomb(out, base, hs, coeffs, ks)
            }
            #[inline]
            fn lincomb_lane(&self, j: usize, out: &mut S, base: &S, h: f64, coeffs: &[f64], ks: &[S]) {
                StateArith::new().lincomb_lane(j, out, base, h, coeffs, ks)
            }
            fn combine4_lane(&self, j: usize, out: &mut S, w: [f64; 4], x: [&S; 4]) {
                StateArith::new().combine4_lane(j, out, w, x)
            }
            fn lane_width(&self, buf: &S) -> usize {
                buf.len()
            }
            fn lane_to_f64(&self, _j: usize, buf: &S, out: &mut [f64]) {
                buf.write_f64(out);
            }
            fn lane_from_f64(&self, _j: usize, buf: &mut S, src: &[f64]) {
                buf.read_f64(src);
            }
        }
    };
}

state_lane_arith!(Joint<'_, S, D, N>, S: State, D, N);

impl<S: State, D: Dynamics<S>, N> Evaluate for Joint<'_, S, D, N> {
    #[inline]
    fn eval(&mut self, ts: &[f64], y: &S, dy: &mut S) {
        self.f.eval(ts[0], y, dy);
    }
}

impl<S: State, D: Dynamics<S>, N: ErrorNorm<S>> Lanes for Joint<'_, S, D, N> {
    type Lane = S;
    fn count(&self) -> usize {
        1
    }
    fn lane_bytes(&self) -> usize {
        self.y.size_bytes()
    }
    fn buf(&self) -> S {
        self.y.zeros_like()
    }
    fn error_ratios(&self, err: &S, y0: &S, y1: &S, rtol: f64, atol: f64, out: &mut [f64]) {
        out[0] = self.norm.norm(err, y0, y1, rtol, atol);
    }
    fn finite(&self, y: &S, out: &mut [bool]) {
        out[0] = y.all_finite();
    }
    fn lane(&self, _j: usize, buf: &S) -> S {
        buf.clone()
    }
    fn initial_finite(&self, _lane: usize) -> bool {
        self.y.all_finite()
    }
    fn first_stages(&mut self, _lanes: &[usize], ts: &[f64], finite: &mut [bool]) {
        self.f.eval(ts[0], &self.y, &mut self.k0);
        finite[0] = self.k0.all_finite();
    }
    fn load(&mut self, _block: &[usize], ws: &mut Workspace<S>) {
        std::mem::swap(&mut self.y, &mut ws.y);
        std::mem::swap(&mut self.k0, &mut ws.k[0]);
    }
    fn advance(&mut self, _j: usize, _lane: usize, ws: &mut Workspace<S>, end: Option<usize>) {
        std::mem::swap(&mut ws.y, &mut ws.y1);
        if let Some(e) = end {
            ws.k.swap(0, e);
        }
    }
    fn unload(&mut self, block: &[usize], ws: &mut Workspace<S>) {
        self.load(block, ws);
    }
    fn record(&mut self, index: usize, _j: usize, _lane: usize, buf: &S) {
        debug_assert_eq!(index, self.ys.len(), "joint outputs are recorded in order");
        self.ys.push(buf.clone());
    }
    fn at_output(&mut self, _lane: usize, index: usize, t: f64) -> bool {
        match self.hook.as_mut() {
            Some(h) => h(index, t, &mut self.y),
            None => false,
        }
    }
}

/// Dynamics on one lane over a [`State`], with no outputs or norm: what a stepper's stages
/// need (the gradient engine replays recorded steps through it).
pub struct StateEval<'a, S, D> {
    f: &'a mut D,
    _state: PhantomData<fn() -> S>,
}

impl<'a, S: State, D: Dynamics<S>> StateEval<'a, S, D> {
    /// Borrow `f`.
    pub fn new(f: &'a mut D) -> Self {
        Self { f, _state: PhantomData }
    }
}

state_lane_arith!(StateEval<'_, S, D>, S: State, D);

impl<S: State, D: Dynamics<S>> Evaluate for StateEval<'_, S, D> {
    #[inline]
    fn eval(&mut self, ts: &[f64], y: &S, dy: &mut S) {
        self.f.eval(ts[0], y, dy);
    }
}
