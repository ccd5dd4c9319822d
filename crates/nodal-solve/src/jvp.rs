//! Forward-mode (Jacobian-vector) products and their reverse, the second-order information the
//! Jacobian and higher-order regularisers need ([`crate::regularise`]).

use crate::dynamics::VjpDynamics;
use crate::state::State;

/// Dynamics with Jacobian-vector products `J v = (df/dy)(t, y) v` and the reverse of that product.
///
/// The reverse, for a cotangent `c` of `u = J(t, y) v` with `v` held fixed, returns the three
/// pieces reverse-mode differentiation of `u` needs:
///
/// - `adj_y = c^T d(J v)/dy` (a Hessian-vector contraction: second derivatives of `f`),
/// - `adj_v = J^T c` (the ordinary VJP; `u` is linear in `v`),
/// - `adj_p += c^T d(J v)/dtheta`.
///
/// Implementations compute all of these exactly (by hand-derived forward mode and its adjoint),
/// never by finite differences.
pub trait JvpDynamics<S: State>: VjpDynamics<S> {
    /// Whether the products below are available. Wrappers that only provide first-order
    /// information (see [`crate::regularise::FirstOrder`]) return `false`, and the regularisers
    /// that need them refuse such dynamics with a typed error instead of computing anything.
    fn has_jvp(&self) -> bool {
        true
    }
    /// `dy <- f(t, y)` and `jv <- J(t, y) v` in one pass.
    fn eval_and_jvp(&mut self, t: f64, y: &S, v: &S, dy: &mut S, jv: &mut S);
    /// For the cotangent `c` of `J(t, y) v`: `adj_y <- c^T d(Jv)/dy`, `adj_v <- J^T c` (both
    /// overwritten) and `adj_p <- adj_p + c^T d(Jv)/dtheta`.
    #[allow(clippy::too_many_arguments)]
    fn jvp_vjp(&mut self, t: f64, y: &S, v: &S, c: &S, adj_y: &mut S, adj_v: &mut S, adj_p: &mut Self::Params);
}

impl<S: State, D: JvpDynamics<S> + ?Sized> JvpDynamics<S> for &mut D {
    fn has_jvp(&self) -> bool {
        (**self).has_jvp()
    }
    fn eval_and_jvp(&mut self, t: f64, y: &S, v: &S, dy: &mut S, jv: &mut S) {
        (**self).eval_and_jvp(t, y, v, dy, jv)
    }
    fn jvp_vjp(&mut self, t: f64, y: &S, v: &S, c: &S, adj_y: &mut S, adj_v: &mut S, adj_p: &mut Self::Params) {
        (**self).jvp_vjp(t, y, v, c, adj_y, adj_v, adj_p)
    }
}
