//! Elementwise activations: `J V = g'(x) * V`. Each slope is written with tensor ops of `x` (or of
//! `g(x)`), so reverse mode through it gives the second derivative `g''`.
//!
//! | activation | `g(x)` | `g'(x)` |
//! |---|---|---|
//! | tanh | `tanh x` | `1 - g²` |
//! | sigmoid | `σ(x)` | `g (1 - g)` |
//! | softplus (β, threshold τ) | `ln(1 + e^{βx}) / β`, `x` where `βx > τ` | `σ(βx)`, `1` where `βx > τ` |
//! | relu | `max(x, 0)` | `1` where `x > 0`, else `0` |
//! | gelu (exact) | `x Φ(x)` | `Φ(x) + x φ(x)` |
//! | gelu (tanh approximation) | `x (1 + tanh u) / 2`, `u = √(2/π)(x + 0.044715 x³)` | `(1 + tanh u)/2 + x (1 - tanh² u) u' / 2` |
//! | silu | `x σ(x)` | `σ(x) (1 + x (1 - σ(x)))` |

use super::{Dual, JvpLayer};
use burn::nn::activation::{Gelu, Relu, SiLU, Sigmoid, Softplus, Tanh};
use burn::tensor::activation::{gelu, gelu_approximate, sigmoid, softplus_with_threshold};

/// `tanh` with its tangent.
pub fn tanh<const D: usize>(x: Dual<D>) -> Dual<D> {
    x.elementwise(|x| {
        let y = x.tanh();
        (y.clone(), y.clone().mul(y).neg().add_scalar(1.0))
    })
}

/// Logistic sigmoid with its tangent.
pub fn sigmoid_jvp<const D: usize>(x: Dual<D>) -> Dual<D> {
    x.elementwise(|x| {
        let y = sigmoid(x);
        (y.clone(), y.clone() * y.neg().add_scalar(1.0))
    })
}

/// Softplus `ln(1 + e^{βx}) / β` (identity above `βx > threshold`, as burn's) with its tangent.
pub fn softplus<const D: usize>(x: Dual<D>, beta: f64, threshold: f64) -> Dual<D> {
    x.elementwise(|x| {
        let slope = sigmoid(x.clone().mul_scalar(beta));
        let above = x.clone().mul_scalar(beta).greater_elem(threshold);
        let slope = slope.mask_fill(above, 1.0);
        (softplus_with_threshold(x, beta, threshold), slope)
    })
}

/// `max(x, 0)` with its tangent (slope 0 at 0).
pub fn relu<const D: usize>(x: Dual<D>) -> Dual<D> {
    x.elementwise(|x| {
        let slope = x.zeros_like().mask_fill(x.clone().greater_elem(0.0), 1.0);
        (burn::tensor::activation::relu(x), slope)
    })
}

/// GELU, exact (`x Φ(x)`) or its tanh approximation, with its tangent.
pub fn gelu_jvp<const D: usize>(x: Dual<D>, approximate: bool) -> Dual<D> {
    x.elementwise(|x| {
        if approximate {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let u = (x.clone() + x.clone().powi_scalar(3).mul_scalar(0.044715)).mul_scalar(c);
            let du = (x.clone().square().mul_scalar(3.0 * 0.044715)).add_scalar(1.0).mul_scalar(c);
            let th = u.tanh();
            let slope =
                th.clone().add_scalar(1.0).mul_scalar(0.5) + x.clone() * th.clone().square().neg().add_scalar(1.0) * du.mul_scalar(0.5);
            (gelu_approximate(x), slope)
        } else {
            let cdf = x.clone().mul_scalar(std::f64::consts::FRAC_1_SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5);
            let pdf = x.clone().square().mul_scalar(-0.5).exp().mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt());
            let slope = cdf + x.clone() * pdf;
            (gelu(x), slope)
        }
    })
}

/// SiLU `x σ(x)` with its tangent.
pub fn silu<const D: usize>(x: Dual<D>) -> Dual<D> {
    x.elementwise(|x| {
        let s = sigmoid(x.clone());
        let slope = s.clone() * (x.clone() * s.clone().neg().add_scalar(1.0)).add_scalar(1.0);
        (x * s, slope)
    })
}

impl<const D: usize> JvpLayer<D> for Tanh {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        tanh(x)
    }
}
impl<const D: usize> JvpLayer<D> for Sigmoid {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        sigmoid_jvp(x)
    }
}
impl<const D: usize> JvpLayer<D> for Softplus {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        softplus(x, self.beta, self.threshold)
    }
}
impl<const D: usize> JvpLayer<D> for Relu {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        relu(x)
    }
}
impl<const D: usize> JvpLayer<D> for Gelu {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        gelu_jvp(x, self.approximate)
    }
}
impl<const D: usize> JvpLayer<D> for SiLU {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        silu(x)
    }
}
