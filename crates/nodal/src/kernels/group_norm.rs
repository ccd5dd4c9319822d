//! Group normalisation (Wu & He, "Group Normalization", ECCV 2018) as one fused kernel on the
//! flex backend, forward and backward.
//!
//! For an input `x` of shape `[N, C, *]` split into `G` groups of `C / G` channels, each group
//! of each example (`M = (C / G) · S` values, `S` the product of the trailing dimensions) is
//! normalised by its own mean `μ` and biased variance `σ²`, then scaled and shifted per channel:
//!
//! ```text
//! x̂ = (x − μ) / sqrt(σ² + ε),        y = γ_c · x̂ + β_c
//! ```
//!
//! burn's `GroupNorm::forward` composes this from generic tensor ops (reshape, two mean
//! reductions, a subtraction, a square, a division, a broadcast multiply and add), each a pass
//! over memory with its own allocation, and its backward is the chain of those ops' backwards.
//! Here the forward is two reading passes and one writing pass per group, and the backward is
//! the closed form, with `g = γ_c · dy`:
//!
//! ```text
//! dx   = (g − mean(g) − x̂ · mean(g · x̂)) / sqrt(σ² + ε)      (means over the group)
//! dγ_c = Σ_{n, s} dy · x̂,        dβ_c = Σ_{n, s} dy
//! ```
//!
//! Groups are independent, so both passes run in parallel over `(example, group)` on the rayon
//! pool. Sums use sixteen `f32` lanes (vectorised) combined in `f64`.
//!
//! [`group_norm`] takes burn's own [`GroupNorm`] module (same parameters, same records) and
//! uses the kernel for `f32` tensors on flex, with or without autodiff; any other dtype or
//! backend falls back to `GroupNorm::forward`, so results never depend on which path ran
//! beyond `f32` round-off.

use super::flex_host::{contiguous, f32s, on_flex, tensor_from};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::GroupNorm;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// The non-tensor arguments of the fused op: how many groups, and `ε`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormSpec {
    /// Number of channel groups `G` (divides the channel count).
    pub groups: usize,
    /// The variance offset `ε`.
    pub epsilon: f64,
}

/// The fused group norm as a backend extension (flex, and autodiff over flex).
#[backend_extension(Flex, Autodiff)]
pub trait GroupNormBackend: Backend {
    /// `y = γ · (x − μ) / sqrt(σ² + ε) + β` per group of `x: [N, C, *]`; `gamma`, `beta`: `[C]`.
    fn fused_group_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, spec: GroupNormSpec) -> FloatTensor<Self>;
}

/// Group norm with `norm`'s parameters: the fused kernel for `f32` on flex, `norm.forward`
/// otherwise. Same result as `norm.forward(x)` up to `f32` round-off, with gradients for
/// `x`, `γ` and `β` when they are tracked.
pub fn group_norm<const D: usize>(norm: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    if !super::enabled()
        || !fused_applies(&x)
        || x.dims()[1] != norm.num_channels
        || norm.num_groups == 0
        || norm.num_channels % norm.num_groups != 0
    {
        return norm.forward(x);
    }
    let (device, dtype) = (x.device(), x.dtype());
    let channels = norm.num_channels;
    let (gamma, beta) = match (&norm.gamma, &norm.beta) {
        (Some(g), Some(b)) if norm.affine => (g.val(), b.val()),
        _ => (Tensor::<1>::ones([channels], (&device, dtype)), Tensor::<1>::zeros([channels], (&device, dtype))),
    };
    if gamma.dtype() != DType::F32 || beta.dtype() != DType::F32 {
        return norm.forward(x);
    }
    let spec = GroupNormSpec { groups: norm.num_groups, epsilon: norm.epsilon };
    Tensor::from_dispatch(<Dispatch as GroupNormBackend>::fused_group_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        spec,
    ))
}

/// Whether the fused kernel serves this tensor: `f32`, rank ≥ 2, on flex (autodiff or not).
fn fused_applies<const D: usize>(x: &Tensor<D>) -> bool {
    D >= 2 && x.dtype() == DType::F32 && on_flex(&x.device())
}

/// Per `(example, group)` statistics of a forward pass, kept for the backward.
#[derive(Clone, Debug)]
struct GroupStats {
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

/// Sizes of one call: `n` examples, `c` channels, `s` values per channel, `groups` groups.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
}

impl Sizes {
    fn of(x: &FloatTensor<Flex>, spec: GroupNormSpec) -> Self {
        let dims = x.shape().to_vec();
        let s = dims[2..].iter().product::<usize>();
        Sizes { n: dims[0], c: dims[1], s, groups: spec.groups }
    }

    /// Channels per group.
    fn per_group(&self) -> usize {
        self.c / self.groups
    }

    /// Values per `(example, group)` block.
    fn block(&self) -> usize {
        self.per_group() * self.s
    }
}

/// Blocks per rayon task, so that a task covers at least ~16k values.
fn min_blocks(block: usize) -> usize {
    (16_384 / block.max(1)).max(1)
}

/// Sum of `v` on sixteen `f32` lanes, combined in `f64`.
#[inline]
fn lane_sum(v: &[f32]) -> f64 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for ch in chunks {
        for i in 0..16 {
            acc[i] += ch[i];
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + rest.iter().map(|&a| a as f64).sum::<f64>()
}

/// `Σ (v − m)²` on sixteen lanes.
#[inline]
fn lane_sq_dev(v: &[f32], m: f32) -> f64 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for ch in chunks {
        for i in 0..16 {
            let d = ch[i] - m;
            acc[i] += d * d;
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + rest.iter().map(|&a| ((a - m) * (a - m)) as f64).sum::<f64>()
}

/// `(Σ dy, Σ dy · (x − m))` on sixteen lanes.
#[inline]
fn lane_dy_sums(dy: &[f32], x: &[f32], m: f32) -> (f64, f64) {
    let (mut a, mut b) = ([0f32; 16], [0f32; 16]);
    let (cd, cx) = (dy.chunks_exact(16), x.chunks_exact(16));
    let (rd, rx) = (cd.remainder(), cx.remainder());
    for (d, xv) in cd.zip(cx) {
        for i in 0..16 {
            a[i] += d[i];
            b[i] += d[i] * (xv[i] - m);
        }
    }
    let mut sa = a.iter().map(|&v| v as f64).sum::<f64>();
    let mut sb = b.iter().map(|&v| v as f64).sum::<f64>();
    for (d, xv) in rd.iter().zip(rx) {
        sa += *d as f64;
        sb += (*d * (*xv - m)) as f64;
    }
    (sa, sb)
}

/// A contiguous `f32` view of a flex tensor (copies only when it is strided).

/// The forward pass: output and the statistics of every group.
fn forward(
    x: &FloatTensor<Flex>,
    gamma: &FloatTensor<Flex>,
    beta: &FloatTensor<Flex>,
    spec: GroupNormSpec,
) -> (FloatTensor<Flex>, GroupStats) {
    let sz = Sizes::of(x, spec);
    let (xc, gc, bc) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let (xs, gs, bs) = (f32s(&xc), f32s(&gc), f32s(&bc));
    let (block, cpg, s) = (sz.block(), sz.per_group(), sz.s);
    let blocks = sz.n * sz.groups;
    let mut out = vec![0f32; xs.len()];
    let mut mean = vec![0f32; blocks];
    let mut rstd = vec![0f32; blocks];
    if block > 0 {
        out.par_chunks_mut(block)
            .zip(xs.par_chunks(block))
            .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
            .enumerate()
            .with_min_len(min_blocks(block))
            .for_each(|(b, ((y, xb), (mu, rs)))| {
                let m = (lane_sum(xb) / block as f64) as f32;
                let var = lane_sq_dev(xb, m) / block as f64;
                let r = (1.0 / (var + spec.epsilon).sqrt()) as f32;
                *mu = m;
                *rs = r;
                let g0 = (b % sz.groups) * cpg;
                for (k, (yc, xcn)) in y.chunks_exact_mut(s).zip(xb.chunks_exact(s)).enumerate() {
                    // (x − μ)·a + β, not x·a + (β − μ·a): the latter loses digits when |μ| is
                    // large next to σ.
                    let (a, shift) = (r * gs[g0 + k], bs[g0 + k]);
                    for (yv, xv) in yc.iter_mut().zip(xcn) {
                        *yv = (xv - m) * a + shift;
                    }
                }
            });
    }
    (tensor_from(out, x.shape().to_vec()), GroupStats { mean, rstd })
}

/// Gradients of the backward pass (each computed only when asked for).
struct Grads {
    x: Option<Vec<f32>>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// The closed-form backward: `dx` (when `want_x`), `dγ` and `dβ`.
fn backward(dy: &FloatTensor<Flex>, state: &GroupNormState, want_x: bool) -> Grads {
    let sz = Sizes::of(&state.x, state.spec);
    let (dyc, xc, gc) = (contiguous(dy), contiguous(&state.x), contiguous(&state.gamma));
    let (dys, xs, gs) = (f32s(&dyc), f32s(&xc), f32s(&gc));
    let (block, cpg, s, groups) = (sz.block(), sz.per_group(), sz.s, sz.groups);
    // Per (example, channel): Σ dy and Σ dy · (x − μ).
    let mut sum_dy = vec![0f64; sz.n * sz.c];
    let mut sum_dyx = vec![0f64; sz.n * sz.c];
    let mut dx = if want_x { vec![0f32; xs.len()] } else { Vec::new() };
    if block > 0 {
        let stats = &state.stats;
        let one_block = |b: usize, xb: &[f32], dyb: &[f32], sdy: &mut [f64], sdyx: &mut [f64], dxb: Option<&mut [f32]>| {
            let (m, r) = (stats.mean[b], stats.rstd[b]);
            let g0 = (b % groups) * cpg;
            let (mut s1, mut s2) = (0f64, 0f64);
            for k in 0..cpg {
                let (a, bb) = lane_dy_sums(&dyb[k * s..(k + 1) * s], &xb[k * s..(k + 1) * s], m);
                sdy[k] = a;
                sdyx[k] = bb;
                s1 += gs[g0 + k] as f64 * a;
                s2 += gs[g0 + k] as f64 * bb;
            }
            if let Some(dxb) = dxb {
                // dx = r·γ·dy − r·mean(γ·dy) − r³·(x − μ)·mean(γ·dy·(x − μ))
                let rf = r as f64;
                let coef_x = (-rf * rf * rf * s2 / block as f64) as f32;
                let shift = (-rf * s1 / block as f64) as f32;
                for k in 0..cpg {
                    let a = r * gs[g0 + k];
                    let range = k * s..(k + 1) * s;
                    for ((d, &dyv), &xv) in dxb[range.clone()].iter_mut().zip(&dyb[range.clone()]).zip(&xb[range]) {
                        *d = a * dyv + coef_x * (xv - m) + shift;
                    }
                }
            }
        };
        let min_len = min_blocks(block);
        let sums = sum_dy.par_chunks_mut(cpg).zip(sum_dyx.par_chunks_mut(cpg));
        if want_x {
            dx.par_chunks_mut(block)
                .zip(xs.par_chunks(block).zip(dys.par_chunks(block)))
                .zip(sums)
                .enumerate()
                .with_min_len(min_len)
                .for_each(|(b, ((dxb, (xb, dyb)), (sdy, sdyx)))| one_block(b, xb, dyb, sdy, sdyx, Some(dxb)));
        } else {
            xs.par_chunks(block)
                .zip(dys.par_chunks(block))
                .zip(sums)
                .enumerate()
                .with_min_len(min_len)
                .for_each(|(b, ((xb, dyb), (sdy, sdyx)))| one_block(b, xb, dyb, sdy, sdyx, None));
        }
    }
    // dγ_c = Σ_n r_{n,g} Σ_s dy (x − μ_{n,g});  dβ_c = Σ_n Σ_s dy.
    let mut dgamma = vec![0f64; sz.c];
    let mut dbeta = vec![0f64; sz.c];
    for n in 0..sz.n {
        for c in 0..sz.c {
            let r = if block > 0 { state.stats.rstd[n * groups + c / cpg] as f64 } else { 0.0 };
            dgamma[c] += r * sum_dyx[n * sz.c + c];
            dbeta[c] += sum_dy[n * sz.c + c];
        }
    }
    Grads {
        x: want_x.then_some(dx),
        gamma: dgamma.into_iter().map(|v| v as f32).collect(),
        beta: dbeta.into_iter().map(|v| v as f32).collect(),
    }
}

impl GroupNormBackend for Flex {
    fn fused_group_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, spec: GroupNormSpec) -> FloatTensor<Self> {
        forward(&x, &gamma, &beta, spec).0
    }
}

/// What the backward needs: the input, `γ`, the group statistics and the spec.
#[derive(Clone, Debug)]
struct GroupNormState {
    x: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    stats: GroupStats,
    spec: GroupNormSpec,
}

#[derive(Debug)]
struct GroupNormBackward;

impl Backward<Flex, 3> for GroupNormBackward {
    type State = GroupNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let g = backward(&dy, &ops.state, node_x.is_some());
        let channels = vec![g.gamma.len()];
        if let (Some(node), Some(dx)) = (node_x, g.x) {
            grads.register::<Flex>(node.id, tensor_from(dx, ops.state.x.shape().to_vec()));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor_from(g.gamma, channels.clone()));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor_from(g.beta, channels));
        }
    }
}

impl<C: CheckpointStrategy> GroupNormBackend for Autodiff<Flex, C> {
    fn fused_group_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, spec: GroupNormSpec) -> FloatTensor<Self> {
        let (xp, xn) = x.into_parts();
        let (gp, gn) = gamma.into_parts();
        let (bp, bn) = beta.into_parts();
        match GroupNormBackward.prepare::<C>([xn, gn, bn]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, stats) = forward(&xp, &gp, &bp, spec);
                prep.finish(GroupNormState { x: xp, gamma: gp, stats, spec }, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&xp, &gp, &bp, spec).0),
        }
    }
}
