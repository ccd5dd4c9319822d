//! A U-Net vector field on images `[batch, c, h, w]` (Ronneberger et al. 2015, in the residual,
//! time-conditioned form of diffusion and flow-matching models: Ho et al. 2020, Lipman et al.
//! 2023).
//!
//! ```text
//! x ─ conv_in ─ R(C)  ──────────────────────────────── cat ─ R(C) ─ gn, silu, conv_out ─ f
//!                 └ pool ─ R(2C) ───────────── cat ─ R(2C) ─ up ┘
//!                              └ pool ─ R(2C) (middle) ─ up ┘
//! ```
//!
//! With [`UNetConfig::middle_attention`] `= heads > 0` the middle is `R(2C) ─ A ─ R(2C)`: a
//! [`SpatialAttention`] over the `7 x 7` positions (global context at the coarsest level, as in
//! Ho et al. 2020) and a second residual block. Both start as the identity (the attention's
//! output projection and the second block's last convolution are zero), so a trained model
//! without them can be grown into one with them without changing its field
//! ([`UNet::grown_from`]), then trained further.
//!
//! Each residual block `R` is `h = conv(silu(gn(x))) + W c(t)`, `out = conv(silu(gn(h))) +
//! skip(x)` (a 1x1 convolution as `skip` when the widths differ), with `c(t)` the
//! [`TimeEmbedding`](super::time_embedding::TimeEmbedding) added per channel. Pooling is a 2x2
//! mean, upsampling nearest-neighbour, so `h` and `w` must be divisible by 4 (28 x 28 MNIST:
//! 28, 14, 7). `conv_out` starts at zero, so the untrained field is `f = 0`.

use super::conv_field::{conv3x3, group_norm};
use super::spatial_attention::SpatialAttention;
use super::time_embedding::TimeEmbedding;
use crate::kernels;
use crate::neural_ode::shaped::FieldNd;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

/// Sizes of a [`UNet`].
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct UNetConfig {
    /// Channels of the images (1 for MNIST).
    pub image_channels: usize,
    /// Width of the top level `C` (the lower levels have `2C`).
    pub channels: usize,
    /// Sinusoidal features of `t`.
    pub time_features: usize,
    /// Width of the time embedding `c(t)`.
    pub time_width: usize,
    /// Attention heads in the middle (`0`: none, the plain middle block). When positive the
    /// middle gains a [`SpatialAttention`] and a second residual block; `heads` must divide
    /// `2C`. Files from before this setting existed read as `0`, which is what they hold.
    #[serde(default)]
    pub middle_attention: usize,
}

impl Default for UNetConfig {
    /// The MNIST flow-matching field: one image channel, `C = 32`.
    fn default() -> Self {
        Self { image_channels: 1, channels: 32, time_features: 32, time_width: 64, middle_attention: 0 }
    }
}

impl UNetConfig {
    /// Why these sizes cannot make a U-Net, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.channels == 0 || self.image_channels == 0 {
            return Err(format!("channels {} and image_channels {} must be positive", self.channels, self.image_channels));
        }
        if self.time_features < 2 || self.time_features % 2 != 0 || self.time_width == 0 {
            return Err(format!("time_features {} must be even and >= 2, time_width {} positive", self.time_features, self.time_width));
        }
        let heads = self.middle_attention;
        if heads > 0 && (2 * self.channels) % heads != 0 {
            return Err(format!("middle_attention {heads}: must divide the middle width 2C = {}", 2 * self.channels));
        }
        Ok(())
    }

    /// The U-Net with these sizes (burn's default initialisation; `conv_out`, and in the middle
    /// the attention's output and the second block's last convolution, at zero).
    pub fn init(&self, device: &Device) -> UNet {
        let (c, tw) = (self.channels, self.time_width);
        let conv_out = zeroed(conv3x3(c, self.image_channels, device));
        let heads = self.middle_attention;
        UNet {
            time: TimeEmbedding::new(self.time_features, tw, device),
            conv_in: conv3x3(self.image_channels, c, device),
            down1: ResBlock::new(c, c, tw, device),
            down2: ResBlock::new(c, 2 * c, tw, device),
            middle: ResBlock::new(2 * c, 2 * c, tw, device),
            middle_attention: (heads > 0).then(|| SpatialAttention::new(2 * c, heads, device)),
            middle2: (heads > 0).then(|| ResBlock::new(2 * c, 2 * c, tw, device).identity_at_start()),
            up2: ResBlock::new(4 * c, 2 * c, tw, device),
            up1: ResBlock::new(3 * c, c, tw, device),
            norm_out: group_norm(c, device),
            conv_out,
        }
    }
}

/// `conv` with its weight and bias at zero (an output that starts at `0`).
fn zeroed(mut conv: Conv2d) -> Conv2d {
    conv.weight = Param::from_tensor(conv.weight.val().zeros_like());
    conv.bias = conv.bias.map(|b| Param::from_tensor(b.val().zeros_like()));
    conv
}

/// A residual block with time conditioning (see the module docs).
#[derive(Module, Debug)]
pub struct ResBlock {
    /// Norm of the input.
    pub norm1: GroupNorm,
    /// First 3x3 convolution.
    pub conv1: Conv2d,
    /// `c(t)` to one shift per output channel.
    pub time: Linear,
    /// Norm before the second convolution.
    pub norm2: GroupNorm,
    /// Second 3x3 convolution.
    pub conv2: Conv2d,
    /// 1x1 convolution on the residual path when the widths differ.
    pub skip: Option<Conv2d>,
}

impl ResBlock {
    /// `c_in -> c_out` channels, conditioned on a time embedding of width `time_width`.
    pub fn new(c_in: usize, c_out: usize, time_width: usize, device: &Device) -> Self {
        Self {
            norm1: group_norm(c_in, device),
            conv1: conv3x3(c_in, c_out, device),
            time: LinearConfig::new(time_width, c_out).init(device),
            norm2: group_norm(c_out, device),
            conv2: conv3x3(c_out, c_out, device),
            skip: (c_in != c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
        }
    }

    /// This block with its last convolution at zero: with equal widths (no `skip`
    /// convolution) it is then the identity until trained.
    pub fn identity_at_start(mut self) -> Self {
        self.conv2 = zeroed(self.conv2);
        self
    }

    /// `[b, c_in, h, w]` and `c(t)` (`[1, time_width]` for all rows, or `[b, time_width]`, one
    /// row per example) to `[b, c_out, h, w]`.
    pub fn forward(&self, x: Tensor<4>, c: &Tensor<2>) -> Tensor<4> {
        let h = kernels::conv2d(&self.conv1, silu(kernels::group_norm(&self.norm1, x.clone())));
        let co = h.dims()[1];
        let rows = c.dims()[0];
        let h = h + self.time.forward(silu(c.clone())).reshape([rows, co, 1, 1]);
        let h = kernels::conv2d(&self.conv2, silu(kernels::group_norm(&self.norm2, h)));
        let skip = match &self.skip {
            Some(conv) => kernels::conv2d(conv, x),
            None => x,
        };
        h + skip
    }
}

/// 2x2 mean pooling: `[b, c, h, w] -> [b, c, h/2, w/2]`.
pub fn pool(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2]).mean_dim(5).mean_dim(3).reshape([b, c, h / 2, w / 2])
}

/// Nearest-neighbour upsampling by 2: `[b, c, h, w] -> [b, c, 2h, 2w]`.
pub fn upsample(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1]).expand([b, c, h, 2, w, 2]).reshape([b, c, 2 * h, 2 * w])
}

/// The U-Net. Build with [`UNetConfig::init`]; see the module docs.
#[derive(Module, Debug)]
pub struct UNet {
    /// `c(t)`.
    pub time: TimeEmbedding,
    /// Image channels to `C`.
    pub conv_in: Conv2d,
    /// Top level, on the way down.
    pub down1: ResBlock,
    /// Half resolution, `C -> 2C`.
    pub down2: ResBlock,
    /// Quarter resolution.
    pub middle: ResBlock,
    /// Attention over the quarter-resolution positions (with `middle_attention > 0`).
    pub middle_attention: Option<SpatialAttention>,
    /// The middle's second residual block (with `middle_attention > 0`).
    pub middle2: Option<ResBlock>,
    /// Half resolution on the way up (`[up, skip]`: `4C -> 2C`).
    pub up2: ResBlock,
    /// Top level on the way up (`[up, skip]`: `3C -> C`).
    pub up1: ResBlock,
    /// Output norm.
    pub norm_out: GroupNorm,
    /// `C` to image channels (zero at initialisation).
    pub conv_out: Conv2d,
}

impl UNet {
    /// The field with example `r` at time `ts[r]`: `ts` holds one time for the whole batch or
    /// one per example (flow-matching training draws a time per example). Any other length is a
    /// caller error (burn refuses the broadcast).
    pub fn forward_times(&self, ts: &[f64], x: Tensor<4>) -> Tensor<4> {
        let c = self.time.forward_times(ts);
        let s1 = self.down1.forward(kernels::conv2d(&self.conv_in, x), &c);
        let s2 = self.down2.forward(pool(s1.clone()), &c);
        let mut m = self.middle.forward(pool(s2.clone()), &c);
        if let Some(attention) = &self.middle_attention {
            m = attention.forward(m);
        }
        if let Some(block) = &self.middle2 {
            m = block.forward(m, &c);
        }
        let u2 = self.up2.forward(Tensor::cat(vec![upsample(m), s2], 1), &c);
        let u1 = self.up1.forward(Tensor::cat(vec![upsample(u2), s1], 1), &c);
        kernels::conv2d(&self.conv_out, silu(kernels::group_norm(&self.norm_out, u1)))
    }
}

impl UNet {
    /// `smaller`'s trained parts in a U-Net of sizes `cfg`, which may add what `smaller` lacks
    /// (the middle attention and second block) and must otherwise equal `smaller`'s sizes
    /// `from`. The added parts start as the identity, so the result computes the same field as
    /// `smaller` (to round-off) until it is trained further.
    pub fn grown_from(smaller: UNet, from: &UNetConfig, cfg: &UNetConfig, device: &Device) -> Result<UNet, String> {
        if (UNetConfig { middle_attention: cfg.middle_attention, ..*from }) != *cfg {
            return Err(format!("a U-Net with {from:?} cannot grow into {cfg:?}: only middle_attention may change"));
        }
        if from.middle_attention != 0 && from.middle_attention != cfg.middle_attention {
            return Err(format!("middle_attention {} cannot change to {}", from.middle_attention, cfg.middle_attention));
        }
        cfg.check()?;
        let fresh = cfg.init(device);
        Ok(UNet {
            middle_attention: smaller.middle_attention.or(fresh.middle_attention),
            middle2: smaller.middle2.or(fresh.middle2),
            ..smaller
        })
    }
}

impl FieldNd<4> for UNet {
    fn forward(&self, t: f64, x: Tensor<4>) -> Tensor<4> {
        self.forward_times(&[t], x)
    }
}
