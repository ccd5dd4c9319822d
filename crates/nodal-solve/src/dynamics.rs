//! The contract between the solvers and the function being integrated.

use crate::state::State;

/// Right-hand side `f(t, y)` of `dy/dt = f(t, y)`.
pub trait Dynamics<S: State> {
    /// Write `f(t, y)` into `dy` (same shape as `y`).
    fn eval(&mut self, t: f64, y: &S, dy: &mut S);
}

/// Dynamics that also provide vector-Jacobian products, which is everything the gradient
/// engine needs: `a^T df/dy` and `a^T df/dtheta` for a cotangent `a`.
///
/// Gradients with respect to times need no `df/dt`: they follow from `f` itself
/// (`dL/dt_k = ybar_k . f(t_k, y_k)`), see [`crate::grad`].
pub trait VjpDynamics<S: State>: Dynamics<S> {
    /// Container of parameter gradients (a flat vector for the fused MLP).
    type Params: State;
    /// A zero parameter-gradient container.
    fn param_zeros(&self) -> Self::Params;
    /// `adj_y <- a^T df/dy (t, y)` (overwritten) and `adj_p <- adj_p + a^T df/dtheta (t, y)`.
    fn vjp(&mut self, t: f64, y: &S, a: &S, adj_y: &mut S, adj_p: &mut Self::Params);
    /// `f(t, y)` and the products of [`VjpDynamics::vjp`] at the same point in one call.
    /// Implementations may share intermediate activations; the default calls both.
    fn eval_and_vjp(&mut self, t: f64, y: &S, a: &S, dy: &mut S, adj_y: &mut S, adj_p: &mut Self::Params) {
        self.eval(t, y, dy);
        self.vjp(t, y, a, adj_y, adj_p);
    }
}

/// Adapts a closure `|t, y, dy| ...` into [`Dynamics`].
pub struct FnDynamics<F>(pub F);

impl<S: State, F: FnMut(f64, &S, &mut S)> Dynamics<S> for FnDynamics<F> {
    fn eval(&mut self, t: f64, y: &S, dy: &mut S) {
        (self.0)(t, y, dy)
    }
}

/// A mutable borrow of dynamics is dynamics (wrappers such as
/// [`crate::regularise::Regularised`] can borrow a model instead of owning it).
impl<S: State, D: Dynamics<S> + ?Sized> Dynamics<S> for &mut D {
    fn eval(&mut self, t: f64, y: &S, dy: &mut S) {
        (**self).eval(t, y, dy)
    }
}

impl<S: State, D: VjpDynamics<S> + ?Sized> VjpDynamics<S> for &mut D {
    type Params = D::Params;
    fn param_zeros(&self) -> Self::Params {
        (**self).param_zeros()
    }
    fn vjp(&mut self, t: f64, y: &S, a: &S, adj_y: &mut S, adj_p: &mut Self::Params) {
        (**self).vjp(t, y, a, adj_y, adj_p)
    }
    fn eval_and_vjp(&mut self, t: f64, y: &S, a: &S, dy: &mut S, adj_y: &mut S, adj_p: &mut Self::Params) {
        (**self).eval_and_vjp(t, y, a, dy, adj_y, adj_p)
    }
}
