//! Normalisation layers. Over each normalised group of `m` entries, with `μ` and `σ² ` its mean
//! and (biased) variance, `s = √(σ² + ε)` and `x̂ = (x - μ) / s`, the output is `γ x̂ + β` and
//!
//! ```text
//! J v = γ (v - mean(v) - x̂ mean(x̂ v)) / s
//! ```
//!
//! (from `dμ = mean(v)`, `dσ² = 2 mean((x - μ) v)`, `ds = s mean(x̂ v)`). `GroupNorm` normalises
//! `[batch, channels, ...]` over each group of channels and all trailing axes, `LayerNorm` over
//! the last axis.

use super::{Dual, JvpLayer};
use burn::nn::{GroupNorm, LayerNorm};
use burn::tensor::Tensor;

/// `(x̂, J̃ v)` over groups of the last axis of `[rows, groups, m]` tensors, before the affine map:
/// `x` is the primal grouped, `v` the stacked tangents grouped.
fn normalise(x: Tensor<3>, v: Tensor<3>, eps: f64, k: usize) -> (Tensor<3>, Tensor<3>) {
    let mu = x.clone().mean_dim(2);
    let centred = x - mu;
    let var = centred.clone().square().mean_dim(2);
    let s = var.add_scalar(eps).sqrt();
    let xhat = centred / s.clone();
    let (xr, sr) = (super::spread(xhat.clone(), k), super::spread(s, k));
    let vm = v.clone().mean_dim(2);
    let proj = (xr.clone() * v.clone()).mean_dim(2);
    (xhat, (v - vm - xr * proj) / sr)
}

/// `[1, c, 1, ...]`: a per-channel vector shaped to broadcast over `[n, c, ...]`.
fn per_channel<const D: usize>(p: Tensor<1>) -> Tensor<D> {
    let mut shape = [1usize; D];
    shape[1] = p.dims()[0];
    p.reshape(shape)
}

impl<const D: usize> JvpLayer<D> for GroupNorm {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        let k = x.probes();
        let (pd, td) = (x.primal.dims(), x.tangent.dims());
        let g = self.num_groups;
        let m = pd[1..].iter().product::<usize>() / g;
        let (xhat, jv) = normalise(x.primal.reshape([pd[0], g, m]), x.tangent.reshape([td[0], g, m]), self.epsilon, k);
        let (mut y, mut jv): (Tensor<D>, Tensor<D>) = (xhat.reshape(pd), jv.reshape(td));
        if self.affine {
            if let Some(gamma) = &self.gamma {
                let gm = per_channel::<D>(gamma.val());
                y = y * gm.clone();
                jv = jv * gm;
            }
            if let Some(beta) = &self.beta {
                y = y + per_channel::<D>(beta.val());
            }
        }
        Dual { primal: y, tangent: jv }
    }
}

/// burn keeps `LayerNorm`'s epsilon private; its display string carries it (`epsilon: 0.00001`).
/// Tests check the primal against `LayerNorm::forward`, so a format change shows up there.
pub fn layer_norm_epsilon(ln: &LayerNorm) -> f64 {
    let text = format!("{ln}");
    text.split("epsilon: ").nth(1).and_then(|r| r.split([',', '}']).next()).and_then(|v| v.trim().parse().ok()).unwrap_or(1e-5)
}

impl<const D: usize> JvpLayer<D> for LayerNorm {
    fn forward_jvp(&self, x: Dual<D>) -> Dual<D> {
        let k = x.probes();
        let (pd, td) = (x.primal.dims(), x.tangent.dims());
        let m = pd[D - 1];
        let (rp, rt) = (x.primal.shape().num_elements() / m, x.tangent.shape().num_elements() / m);
        let (xhat, jv) = normalise(x.primal.reshape([rp, 1, m]), x.tangent.reshape([rt, 1, m]), layer_norm_epsilon(self), k);
        let gamma = self.gamma.val().reshape([1, 1, m]);
        let mut y = xhat * gamma.clone();
        if let Some(beta) = &self.beta {
            y = y + beta.val().reshape([1, 1, m]);
        }
        Dual { primal: y.reshape(pd), tangent: (jv * gamma).reshape(td) }
    }
}
