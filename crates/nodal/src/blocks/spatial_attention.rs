//! Self-attention over the positions of a feature map, as a residual block: the global mixing
//! step of diffusion and flow-matching U-Nets at their coarsest resolution (Ho et al. 2020,
//! Dhariwal & Nichol 2021).
//!
//! For `x: [b, c, h, w]` the `h * w` positions are tokens of width `c`:
//!
//! ```text
//! z   = gn(x) as [b, h*w, c]
//! out = x + (MHA(z, z, z) as [b, c, h, w])
//! ```
//!
//! with `MHA` multi-head scaled dot-product attention (Vaswani et al. 2017), whose output
//! projection starts at zero: a fresh block is the identity, so it can be added to a trained
//! network without changing what it computes ([`super::unet::UNet::grown_from`]). There is no
//! positional encoding: the convolutions around the block already carry position. The norm is
//! per sample, so samples stay independent.

use super::conv_field::group_norm;
use crate::kernels;
use burn::module::{Module, Param};
use burn::nn::GroupNorm;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::tensor::{Device, Tensor};

/// Residual multi-head self-attention over the positions of `[b, c, h, w]` maps.
#[derive(Module, Debug)]
pub struct SpatialAttention {
    /// Norm of the input (per sample).
    pub norm: GroupNorm,
    /// Attention over the `h * w` positions (its output projection starts at zero).
    pub attention: MultiHeadAttention,
}

impl SpatialAttention {
    /// A block for maps of `channels` channels with `heads` heads (`heads` must divide
    /// `channels`), the identity until trained.
    pub fn new(channels: usize, heads: usize, device: &Device) -> Self {
        let mut attention = MultiHeadAttentionConfig::new(channels, heads).with_dropout(0.0).init(device);
        attention.output.weight = Param::from_tensor(attention.output.weight.val().zeros_like());
        if let Some(b) = attention.output.bias.take() {
            attention.output.bias = Some(Param::from_tensor(b.val().zeros_like()));
        }
        Self { norm: group_norm(channels, device), attention }
    }

    /// `[b, c, h, w] -> [b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let tokens = kernels::group_norm(&self.norm, x.clone()).reshape([b, c, h * w]).swap_dims(1, 2);
        let mixed = self.attention.forward(MhaInput::self_attn(tokens)).context;
        x + mixed.swap_dims(1, 2).reshape([b, c, h, w])
    }
}
