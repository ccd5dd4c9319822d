//! Forward-mode derivatives (Jacobian-vector products) for burn layers, written with ordinary
//! tensor operations so that burn's reverse mode differentiates them: one backward pass through a
//! JVP gives exact second-order gradients (Hessian-vector terms with respect to the input, and
//! the parameter gradients of `J v`). burn 0.22 has reverse mode only; this module is how nodal
//! gets traces (continuous normalising flows), Jacobian norms and second-order penalties for
//! any dynamics built from these layers.
//!
//! A [`Dual`] carries a primal `x` of shape `[batch, ...]` and `K` tangents stacked probe-major
//! along the leading axis (`[K * batch, ...]`, row `k * batch + r` is tangent `k` of sample `r`),
//! so `K` directions cost one batched call per layer instead of `K` calls. A layer implements
//! [`JvpLayer`], which maps `(x, V)` to `(f(x), J(x) V)`; tuples of layers are layers (applied
//! left to right), so a chain of JVP layers is a JVP module:
//!
//! ```no_run
//! use nodal::burn::prelude::*;
//! use nodal::burn::nn::{LinearConfig, Tanh};
//! use nodal::jvp::{Dual, JvpLayer};
//! let dev = Device::flex();
//! let net = (LinearConfig::new(2, 16).init(&dev), Tanh::new(), LinearConfig::new(16, 2).init(&dev));
//! let x = Tensor::<2>::ones([4, 2], &dev);
//! let v = Tensor::<2>::ones([4, 2], &dev);       // one tangent per row
//! let out = net.forward_jvp(Dual::new(x, v));     // out.primal = net(x), out.tangent = J v
//! ```
//!
//! Layers covered: `Linear`, `Conv1d`, `Conv2d`, `ConvTranspose2d` ([`linear`]), `Tanh`,
//! `Sigmoid`, `Softplus`, `Relu`, `Gelu`, `SiLU` ([`activation`]), `GroupNorm` and `LayerNorm`
//! ([`norm`]), time concatenation and FFJORD's ConcatSquash ([`time`]), multi-head
//! self-attention ([`attention`]). Dynamics that are not built from these report
//! [`JvpError::NotProvided`] when a JVP feature is asked of them
//! ([`crate::neural_ode::OdeFunc::forward_jvp`]).

pub mod activation;
pub mod attention;
pub mod linear;
pub mod norm;
pub mod time;

#[cfg(test)]
mod tests;

use burn::tensor::Tensor;
use thiserror::Error;

/// A primal value and `K` tangents stacked along the leading axis. See the module docs.
#[derive(Debug, Clone)]
pub struct Dual<const D: usize> {
    /// `x`, shape `[batch, ...]`.
    pub primal: Tensor<D>,
    /// `K` tangents, shape `[K * batch, ...]`, probe-major.
    pub tangent: Tensor<D>,
}

impl<const D: usize> Dual<D> {
    /// Pair `primal` with stacked tangents (the tangents' leading size must be a multiple of the
    /// primal's; checked in debug builds).
    pub fn new(primal: Tensor<D>, tangent: Tensor<D>) -> Self {
        debug_assert!(primal.dims()[0] > 0 && tangent.dims()[0].is_multiple_of(primal.dims()[0]));
        Self { primal, tangent }
    }

    /// Number of tangents `K`.
    pub fn probes(&self) -> usize {
        self.tangent.dims()[0] / self.primal.dims()[0].max(1)
    }

    /// A primal-shaped tensor repeated `K` times along the leading axis, to multiply tangents by.
    pub fn spread(&self, s: Tensor<D>) -> Tensor<D> {
        spread(s, self.probes())
    }

    /// Apply an elementwise function with derivative: `(g(x), g'(x) * V)`, where `value_and_slope`
    /// returns `(g(x), g'(x))`.
    pub fn elementwise(self, value_and_slope: impl FnOnce(Tensor<D>) -> (Tensor<D>, Tensor<D>)) -> Self {
        let k = self.probes();
        let (y, s) = value_and_slope(self.primal);
        Self { primal: y, tangent: self.tangent * spread(s, k) }
    }
}

/// `s` repeated `k` times along the leading axis (probe-major, the layout of [`Dual::tangent`]).
pub fn spread<const D: usize>(s: Tensor<D>, k: usize) -> Tensor<D> {
    if k == 1 { s } else { s.repeat_dim(0, k) }
}

/// A layer with forward-mode derivatives: `(x, V) -> (f(x), J(x) V)`, rank preserved.
pub trait JvpLayer<const D: usize> {
    /// The layer's output and the Jacobian applied to every stacked tangent.
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D>;
}

impl<const D: usize, L: JvpLayer<D> + ?Sized> JvpLayer<D> for &L {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        (**self).forward_jvp(x)
    }
}

impl<const D: usize, L: JvpLayer<D>> JvpLayer<D> for Vec<L> {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        self.iter().fold(x, |x, l| l.forward_jvp(x))
    }
}

macro_rules! chain {
    ($($name:ident),+) => {
        impl<const D: usize, $($name: JvpLayer<D>),+> JvpLayer<D> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
                let ($($name,)+) = self;
                $(let x = $name.forward_jvp(x);)+
                x
            }
        }
    };
}
chain!(A);
chain!(A, B);
chain!(A, B, C);
chain!(A, B, C, E);
chain!(A, B, C, E, F);
chain!(A, B, C, E, F, G);
chain!(A, B, C, E, F, G, H);
chain!(A, B, C, E, F, G, H, I);
chain!(A, B, C, E, F, G, H, I, J);

/// A JVP feature asked of dynamics that cannot provide it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JvpError {
    /// The dynamics implement only the forward pass (first-order gradients), not
    /// [`crate::neural_ode::OdeFunc::forward_jvp`].
    #[error(
        "{feature} needs Jacobian-vector products, which the dynamics `{module}` do not provide: build them from nodal::jvp layers and implement OdeFunc::forward_jvp and has_jvp"
    )]
    NotProvided {
        /// What was asked (`the exact trace`, `the jacobian penalty`, ...).
        feature: &'static str,
        /// The dynamics' type name.
        module: &'static str,
    },
}
