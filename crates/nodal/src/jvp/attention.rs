//! Multi-head self-attention (burn's `MultiHeadAttention` with query = key = value = `x`, no
//! masks, dropout inactive). Per head, with `Q = x W_q`, `K = x W_k`, `V = x W_v` split into heads
//! of width `d_k`, `S = Q Kᵀ / √d_k`, `A = softmax(S)` over keys and `C = A V`:
//!
//! ```text
//! dS = (dQ Kᵀ + Q dKᵀ) / √d_k
//! dA = A * (dS - rowsum(A * dS))          (the same for burn's "quiet" softmax)
//! dC = dA V + A dV,        out = C W_o + b_o,   J v = dC W_o
//! ```
//!
//! No positional encoding is involved, so the map is permutation-equivariant over the `n` tokens.

use super::{Dual, JvpLayer, spread};
use burn::nn::Linear;
use burn::nn::attention::MultiHeadAttention;
use burn::tensor::Tensor;
use burn::tensor::activation::{quiet_softmax, softmax};
use burn::tensor::module::linear;

/// `[rows, n, d] -> [rows, heads, n, d_k]`.
fn heads(x: Tensor<3>, h: usize, dk: usize) -> Tensor<4> {
    let [r, n, _] = x.dims();
    x.reshape([r, n, h, dk]).swap_dims(1, 2)
}

/// `[rows, heads, n, d_k] -> [rows, n, d]`.
fn merge(x: Tensor<4>) -> Tensor<3> {
    let [r, h, n, dk] = x.dims();
    x.swap_dims(1, 2).reshape([r, n, h * dk])
}

/// The primal projection and its tangent through one of the attention's linear maps.
fn project(l: &Linear, x: &Dual<3>, h: usize, dk: usize) -> (Tensor<4>, Tensor<4>) {
    let p = heads(l.forward(x.primal.clone()), h, dk);
    let t = heads(linear(x.tangent.clone(), l.weight.val(), None), h, dk);
    (p, t)
}

impl JvpLayer<3> for MultiHeadAttention {
    fn forward_jvp(&self, x: Dual<3>) -> Dual<3> {
        let (h, dk, k) = (self.n_heads, self.d_k, x.probes());
        // burn divides the scores by `√d_k` computed in f32; the same constant keeps f64 exact.
        let scale = 1.0 / ((dk as f32).sqrt() as f64);
        let (q, dq) = project(&self.query, &x, h, dk);
        let (kk, dkk) = project(&self.key, &x, h, dk);
        let (v, dv) = project(&self.value, &x, h, dk);
        let scores = q.clone().matmul(kk.clone().transpose()).mul_scalar(scale);
        let dscores = (dq.matmul(spread(kk, k).transpose()) + spread(q, k).matmul(dkk.transpose())).mul_scalar(scale);
        let a = if self.quiet_softmax { quiet_softmax(scores, 3) } else { softmax(scores, 3) };
        let ar = spread(a.clone(), k);
        let da = ar.clone() * (dscores.clone() - (ar.clone() * dscores).sum_dim(3));
        let ctx = merge(a.matmul(v.clone()));
        let dctx = merge(da.matmul(spread(v, k)) + ar.matmul(dv));
        Dual { primal: self.output.forward(ctx), tangent: linear(dctx, self.output.weight.val(), None) }
    }
}
