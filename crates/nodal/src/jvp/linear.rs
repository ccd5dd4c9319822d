//! Linear maps: the tangent goes through the same map without its bias,
//! `J V = W V` (`Linear`, and the convolutions, whose weights act linearly on the input).

use super::{Dual, JvpLayer};
use burn::nn::Linear;
use burn::nn::conv::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d};
use burn::tensor::module::linear;

/// `y = x W + b`, `J V = V W`; any rank (features last).
impl<const D: usize> JvpLayer<D> for Linear {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        let tangent = linear(x.tangent, self.weight.val(), None);
        Dual { primal: self.forward(x.primal), tangent }
    }
}

/// The convolutions: the tangent through the same convolution (same padding, stride, dilation,
/// groups), bias dropped. The bias-free copy shares the weight parameter, so gradients of `J V`
/// reach it.
macro_rules! conv {
    ($ty:ty, $rank:literal) => {
        impl JvpLayer<$rank> for $ty {
            fn forward_jvp(&self, x: Dual<$rank>) -> Dual<$rank> {
                let mut unbiased = self.clone();
                unbiased.bias = None;
                Dual { tangent: unbiased.forward(x.tangent), primal: self.forward(x.primal) }
            }
        }
    };
}
conv!(Conv1d, 3);
conv!(Conv2d, 4);
conv!(ConvTranspose1d, 3);
conv!(ConvTranspose2d, 4);
