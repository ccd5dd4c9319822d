//! The ConvNet block of the MNIST ODE-Net (Chen et al. 2018) as a reusable field on
//! `[batch, c, h, w]`:
//!
//! ```text
//! f(t, x) = gn₃(conv₂([relu(gn₂(conv₁([relu(gn₁(x)), t]))), t]))
//! ```
//!
//! 3x3 convolutions with padding 1 that see `t` as one extra constant input channel, group norms
//! (per sample, so samples stay independent; see [`group_norm`]).

use crate::jvp::time::with_time;
use crate::kernels;
use crate::neural_ode::shaped::FieldNd;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Group norm over `channels` with at most 32 groups of at least 4 channels each (the largest
/// such divisor of `channels`). Groups of one channel would normalise away any per-channel
/// shift, such as the time embedding the U-Net adds before its second norm.
pub fn group_norm(channels: usize, device: &Device) -> GroupNorm {
    let most = (channels / 4).clamp(1, 32);
    let groups = (1..=most).rev().find(|g| channels % g == 0).unwrap_or(1);
    GroupNormConfig::new(groups, channels).init(device)
}

/// A 3x3 convolution, padding 1, from `c_in` to `c_out` channels.
pub fn conv3x3(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)
}

/// The ConvNet block. See the module docs.
#[derive(Module, Debug)]
pub struct ConvBlockField {
    /// Norm of the input.
    pub norm1: GroupNorm,
    /// `[x, t] -> c`.
    pub conv1: Conv2d,
    /// Norm after the first convolution.
    pub norm2: GroupNorm,
    /// `[h, t] -> c`.
    pub conv2: Conv2d,
    /// Norm of the output.
    pub norm3: GroupNorm,
}

impl ConvBlockField {
    /// A block on `channels`-channel maps (burn's default initialisation).
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            norm1: group_norm(channels, device),
            conv1: conv3x3(channels + 1, channels, device),
            norm2: group_norm(channels, device),
            conv2: conv3x3(channels + 1, channels, device),
            norm3: group_norm(channels, device),
        }
    }
}

impl FieldNd<4> for ConvBlockField {
    fn forward(&self, t: f64, x: Tensor<4>) -> Tensor<4> {
        let h = kernels::conv2d(&self.conv1, with_time(t, relu(kernels::group_norm(&self.norm1, x))));
        let h = kernels::conv2d(&self.conv2, with_time(t, relu(kernels::group_norm(&self.norm2, h))));
        kernels::group_norm(&self.norm3, h)
    }
}
