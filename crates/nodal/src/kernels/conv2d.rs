//! 2-D convolution as batched im2col and one packed GEMM per chunk of images, forward and
//! backward, on the flex backend.
//!
//! With `x: [B, C_in, H, W]`, `w: [C_out, C_in, k_h, k_w]` and `P = H_out · W_out` output
//! pixels, the unfolded input ("im2col", Chellapilla et al. 2006) of a chunk of `b` images is
//! `X_col: [K, b·P]` with `K = C_in · k_h · k_w` (one row per input channel and kernel offset,
//! one column per output pixel), and
//!
//! ```text
//! Y   = W · X_col                    [C_out, b·P]     forward
//! dW += dY · X_colᵀ                  [C_out, K]       weight gradient
//! dX  = col2im(Wᵀ · dY)              [K, b·P] → x     input gradient (scatter-add)
//! db  = Σ_pixels dY
//! ```
//!
//! Each product is one call of the `gemm` crate (the kernels flex itself uses, AVX-512 where the
//! CPU has it) over a whole chunk of images, so the weight is packed once per chunk instead of
//! once per image and tile, and the weight gradient is a well-shaped product (`K` columns)
//! rather than a convolution with batch and channels swapped. The forward runs one product per
//! image over the chunk's unfolding, images in parallel, straight into the output: the sums of
//! every output are then the same whatever else is in the batch (a data-parallel shard gives
//! the whole batch's rows exactly, as flex's per-image convolution does). Chunks hold at most ~4M unfolded
//! values (16 MiB). The unfolded input is rebuilt in the backward rather than kept, so the
//! autodiff graph holds only `x` and `w`, as burn's own convolution does.
//!
//! [`conv2d`] takes burn's [`Conv2d`] (same parameters and records) for `f32` tensors on flex
//! with one group and explicit or valid padding. With at least 8 input channels, no dilation and
//! an AVX-512 CPU, the op runs the direct kernel of [`super::direct_conv`] (no unfolded copy);
//! otherwise the im2col products here, on the geometries where they measured faster than flex
//! (strided, or large maps). Anything else falls back to `Conv2d::forward`. [`conv2d_always`]
//! skips the size rule.

use super::direct_conv;
use super::flex_host::{contiguous, f32s, on_flex, tensor_from};
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

/// Geometry of a convolution: stride, zero padding, dilation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    /// Stride `[s_h, s_w]`.
    pub stride: [usize; 2],
    /// Zero padding `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    /// Dilation `[d_h, d_w]`.
    pub dilation: [usize; 2],
}

/// The convolution as a backend extension (flex, and autodiff over flex).
#[backend_extension(Flex, Autodiff)]
pub trait Conv2dBackend: Backend {
    /// `y = conv(x, w) + b` for `x: [B, C_in, H, W]`, `w: [C_out, C_in, k_h, k_w]`, `b: [C_out]`.
    fn im2col_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, spec: ConvSpec) -> FloatTensor<Self>;
}

/// `conv.forward(x)` through the im2col kernel for `f32` on flex (one group, explicit or valid
/// padding) where it is faster than flex's own (strided, or at least 128 output pixels per
/// image), and through `Conv2d::forward` otherwise; gradients for `x`, the weight and the bias
/// when they are tracked.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv2d_with(conv, x, false)
}

fn conv2d_with(conv: &Conv2d, x: Tensor<4>, always: bool) -> Tensor<4> {
    if !always && !super::enabled() {
        return conv.forward(x);
    }
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [top, bottom, left, right],
        PaddingConfig2d::Valid => [0; 4],
        _ => return conv.forward(x),
    };
    let flex = on_flex(&x.device());
    let weight = conv.weight.val();
    let [_, cin, h, w] = x.dims();
    let [_, wcin, kh, kw] = weight.dims();
    let fits =
        h + padding[0] + padding[1] >= conv.dilation[0] * (kh - 1) + 1 && w + padding[2] + padding[3] >= conv.dilation[1] * (kw - 1) + 1;
    if !flex || conv.groups != 1 || x.dtype() != DType::F32 || weight.dtype() != DType::F32 || cin != wcin || !fits {
        return conv.forward(x);
    }
    let direct = direct_applies(conv.stride, conv.dilation, cin, [kh, kw], padding);
    if !always && !direct && !worth_it(conv.stride, [h, w], [kh, kw], padding, conv.dilation) {
        return conv.forward(x);
    }
    let cout = weight.dims()[0];
    let bias = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::<1>::zeros([cout], (&x.device(), DType::F32)),
    };
    if bias.dtype() != DType::F32 {
        return conv.forward(x);
    }
    let spec = ConvSpec { stride: conv.stride, padding, dilation: conv.dilation };
    Tensor::from_dispatch(<Dispatch as Conv2dBackend>::im2col_conv2d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), spec))
}

/// Whether this kernel beats flex's own convolution for the geometry, as measured by `op_bench`
/// (docs/benchmarks.md): every strided convolution (flex's strided path is 2x slower) and every
/// map of at least [`PER_IMAGE_PIXELS`] output pixels, but not stride-1 convolutions on small
/// maps (the 6x6 blocks of the MNIST models), where flex's per-image products stay in cache
/// and the batched unfolding is as fast or up to 15% slower.
fn worth_it(
    stride: [usize; 2],
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
    [top, bottom, left, right]: [usize; 4],
    dilation: [usize; 2],
) -> bool {
    let ho = (h + top + bottom - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
    let wo = (w + left + right - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
    stride != [1, 1] || ho * wo >= PER_IMAGE_PIXELS
}

/// [`conv2d`] without the size rule (nor `NODAL_KERNELS=off`): the kernel for every geometry it supports (tests and
/// benchmarks compare it with burn's convolution on small maps too).
pub fn conv2d_always(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv2d_with(conv, x, true)
}

/// Sizes of one call.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    spec: ConvSpec,
}

impl Geometry {
    fn of(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>, spec: ConvSpec) -> Self {
        let (xd, wd) = (x.shape().to_vec(), weight.shape().to_vec());
        let (kh, kw) = (wd[2], wd[3]);
        let [top, bottom, left, right] = spec.padding;
        let ho = (xd[2] + top + bottom - spec.dilation[0] * (kh - 1) - 1) / spec.stride[0] + 1;
        let wo = (xd[3] + left + right - spec.dilation[1] * (kw - 1) - 1) / spec.stride[1] + 1;
        Geometry { batch: xd[0], cin: xd[1], h: xd[2], w: xd[3], cout: wd[0], kh, kw, ho, wo, spec }
    }

    /// Rows of the unfolded input.
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output pixels per image.
    fn p(&self) -> usize {
        self.ho * self.wo
    }

    /// Images per chunk: at most ~4M unfolded values, at least one image.
    fn chunk(&self) -> usize {
        (4 << 20) / (self.k() * self.p()).max(1)
    }

    /// Output columns `[lo, hi)` whose input column `ox·s + j·d − left` lies inside the image.
    fn valid_cols(&self, j: usize) -> (usize, usize) {
        valid_range(self.wo, self.w, self.spec.stride[1], j * self.spec.dilation[1], self.spec.padding[2])
    }

    /// Output rows whose input row lies inside the image, for kernel row `i`.
    fn valid_rows(&self, i: usize) -> (usize, usize) {
        valid_range(self.ho, self.h, self.spec.stride[0], i * self.spec.dilation[0], self.spec.padding[0])
    }
}

/// Outputs `o` in `[lo, hi)` with `0 <= o·stride + offset − pad < size`.
fn valid_range(outputs: usize, size: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize) {
    let lo = if offset >= pad { 0 } else { (pad - offset).div_ceil(stride) };
    let hi = if size + pad > offset { ((size + pad - offset - 1) / stride + 1).min(outputs) } else { 0 };
    (lo.min(hi), hi)
}

/// Unfolds images `[b0, b0 + nb)` of `x` into `cols: [K, nb·P]`.
fn im2col(g: &Geometry, x: &[f32], b0: usize, nb: usize, cols: &mut [f32]) {
    let (p, hw) = (g.p(), g.h * g.w);
    let [sh, sw] = g.spec.stride;
    let [dh, _] = g.spec.dilation;
    let (top, left) = (g.spec.padding[0], g.spec.padding[2]);
    cols.par_chunks_mut(nb * p).enumerate().for_each(|(r, row)| {
        let (c, i, j) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (y_lo, y_hi) = g.valid_rows(i);
        let (x_lo, x_hi) = g.valid_cols(j);
        let col_off = (j * g.spec.dilation[1]) as isize - left as isize;
        for b in 0..nb {
            let plane = &x[((b0 + b) * g.cin + c) * hw..((b0 + b) * g.cin + c + 1) * hw];
            let out = &mut row[b * p..(b + 1) * p];
            for oy in 0..g.ho {
                let seg = &mut out[oy * g.wo..(oy + 1) * g.wo];
                if oy < y_lo || oy >= y_hi {
                    seg.fill(0.0);
                    continue;
                }
                let iy = oy * sh + i * dh - top;
                let line = &plane[iy * g.w..(iy + 1) * g.w];
                seg[..x_lo].fill(0.0);
                seg[x_hi..].fill(0.0);
                if sw == 1 {
                    let start = (x_lo as isize + col_off) as usize; // ix at ox = x_lo
                    seg[x_lo..x_hi].copy_from_slice(&line[start..start + (x_hi - x_lo)]);
                } else {
                    for (ox, v) in (x_lo..x_hi).zip(seg[x_lo..x_hi].iter_mut()) {
                        *v = line[((ox * sw) as isize + col_off) as usize];
                    }
                }
            }
        }
    });
}

/// Adds `cols: [K, nb·P]` back into images `[b0, b0 + nb)` of `dx` (the adjoint of [`im2col`]).
fn col2im(g: &Geometry, cols: &[f32], b0: usize, nb: usize, dx: &mut [f32]) {
    let (p, hw) = (g.p(), g.h * g.w);
    let [sh, sw] = g.spec.stride;
    let [dh, _] = g.spec.dilation;
    let (top, left) = (g.spec.padding[0], g.spec.padding[2]);
    let kk = g.kh * g.kw;
    dx[b0 * g.cin * hw..(b0 + nb) * g.cin * hw].par_chunks_mut(hw).enumerate().for_each(|(plane_index, plane)| {
        let (b, c) = (plane_index / g.cin, plane_index % g.cin);
        for i in 0..g.kh {
            let (y_lo, y_hi) = g.valid_rows(i);
            for j in 0..g.kw {
                let (x_lo, x_hi) = g.valid_cols(j);
                let col_off = (j * g.spec.dilation[1]) as isize - left as isize;
                let r = c * kk + i * g.kw + j;
                let seg = &cols[r * nb * p + b * p..r * nb * p + (b + 1) * p];
                for oy in y_lo..y_hi {
                    let iy = oy * sh + i * dh - top;
                    let line = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &seg[oy * g.wo..(oy + 1) * g.wo];
                    for ox in x_lo..x_hi {
                        line[((ox * sw) as isize + col_off) as usize] += src[ox];
                    }
                }
            }
        }
    });
}

/// Whether one product uses the rayon pool or runs on the calling thread (the caller already
/// runs products in parallel).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Threads {
    Pool,
    One,
}

/// Output pixels per image from which [`conv2d`] prefers this kernel to flex's on stride-1
/// convolutions.
const PER_IMAGE_PIXELS: usize = 128;

/// `dst[m, n] (= or +=) lhs[m, k] · rhs[k, n]` with explicit row and column strides (elements).
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    threads: Threads,
) {
    assert!(
        dst.len() >= m * n
            && (m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs)
            && (k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs)
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every index the product reads or writes is inside the slices (checked above), and
    // `dst` does not alias the operands (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            match threads {
                Threads::Pool => gemm::Parallelism::Rayon(0),
                Threads::One => gemm::Parallelism::None,
            },
        );
    }
}

/// Input channels from which [`direct_conv`] is used: with fewer, its register tiles run only
/// `k_h·k_w·C_in` multiply-adds per store (the MNIST stem, one channel, measured 3.7 ms forward
/// against the im2col kernel's 0.9 ms).
const DIRECT_MIN_CHANNELS: usize = 8;

/// Whether [`direct_conv`] computes this geometry: no dilation, no side padded by a
/// kernel's size or more, at least [`DIRECT_MIN_CHANNELS`] input channels, an AVX-512 CPU, and
/// `NODAL_DIRECT_CONV` not `off` (read once).
fn direct_applies(
    stride: [usize; 2],
    dilation: [usize; 2],
    cin: usize,
    [kh, kw]: [usize; 2],
    [top, bottom, left, right]: [usize; 4],
) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| !matches!(std::env::var("NODAL_DIRECT_CONV").as_deref(), Ok("off" | "0" | "false")));
    on && direct_conv::available()
        && stride.iter().all(|&s| s >= 1)
        && dilation == [1, 1]
        && cin >= DIRECT_MIN_CHANNELS
        && top.max(bottom) < kh
        && left.max(right) < kw
}

impl Geometry {
    /// [`direct_applies`] for this call.
    fn direct(&self) -> bool {
        direct_applies(self.spec.stride, self.spec.dilation, self.cin, [self.kh, self.kw], self.spec.padding)
    }

    /// The direct convolution's plan for the forward (and the weight gradient).
    fn direct_plan(&self) -> direct_conv::Plan {
        let [top, bottom, left, right] = self.spec.padding;
        direct_conv::Plan {
            batch: self.batch,
            channels: self.cin,
            padded: [self.h + top + bottom, self.w + left + right],
            kernel: [self.kh, self.kw],
            stride: self.spec.stride,
        }
    }
}

/// The forward pass through [`direct_conv`].
fn forward_direct(g: &Geometry, xs: &[f32], ws: &[f32], bs: &[f32]) -> FloatTensor<Flex> {
    let plan = g.direct_plan();
    let map = direct_conv::to_padded_channels_last(xs, [g.batch, g.cin, g.h, g.w], g.spec.padding, g.cin);
    let packed = direct_conv::pack_weight(ws, [g.cout, g.cin, g.kh, g.kw], false);
    let stride = direct_conv::padded_channels(g.cout);
    let rows = direct_conv::convolve(&plan, &map, &packed, stride);
    let out = direct_conv::to_channels_first(&rows, [g.batch, g.cout, g.ho, g.wo], stride, Some(bs));
    tensor_from(out, vec![g.batch, g.cout, g.ho, g.wo])
}

/// The backward pass through [`direct_conv`].
fn backward_direct(g: &Geometry, dys: &[f32], xs: &[f32], ws: &[f32], want: [bool; 3]) -> ConvGrads {
    let dims = [g.cout, g.cin, g.kh, g.kw];
    let [top, bottom, left, right] = g.spec.padding;
    let x = want[0].then(|| {
        if g.spec.stride != [1, 1] {
            let stride = direct_conv::padded_channels(g.cin);
            let rows = direct_conv::input_gradient_strided(
                dys,
                ws,
                direct_conv::Strided {
                    input: [g.batch, g.cin, g.h, g.w],
                    weight: dims,
                    output: [g.ho, g.wo],
                    stride: g.spec.stride,
                    padding: g.spec.padding,
                },
            );
            return direct_conv::to_channels_first(&rows, [g.batch, g.cin, g.h, g.w], stride, None);
        }
        // dx = dy padded by k − 1 − pad, convolved with the flipped, transposed weight.
        let pad = [g.kh - 1 - top, g.kh - 1 - bottom, g.kw - 1 - left, g.kw - 1 - right];
        let map = direct_conv::to_padded_channels_last(dys, [g.batch, g.cout, g.ho, g.wo], pad, g.cout);
        let plan = direct_conv::Plan {
            batch: g.batch,
            channels: g.cout,
            padded: [g.ho + pad[0] + pad[1], g.wo + pad[2] + pad[3]],
            kernel: [g.kh, g.kw],
            stride: [1, 1],
        };
        debug_assert_eq!(plan.output(), [g.h, g.w]);
        let packed = direct_conv::pack_weight(ws, dims, true);
        let stride = direct_conv::padded_channels(g.cin);
        let rows = direct_conv::convolve(&plan, &map, &packed, stride);
        direct_conv::to_channels_first(&rows, [g.batch, g.cin, g.h, g.w], stride, None)
    });
    let weight = want[1].then(|| {
        let map = direct_conv::to_padded_channels_last(xs, [g.batch, g.cin, g.h, g.w], g.spec.padding, g.cin);
        let stride = direct_conv::padded_channels(g.cout);
        let rows = direct_conv::to_padded_channels_last(dys, [g.batch, g.cout, g.ho, g.wo], [0; 4], stride);
        let packed = direct_conv::weight_gradient(&g.direct_plan(), &map, &rows, stride);
        direct_conv::unpack_weight_gradient(&packed, dims)
    });
    let bias = want[2].then(|| bias_gradient(dys, g.batch, g.cout, g.p()));
    ConvGrads { x, weight, bias }
}

/// `db[o] = Σ_{b, pixels} dy[b, o, ·]`, summed in `f64`.
fn bias_gradient(dys: &[f32], batch: usize, cout: usize, p: usize) -> Vec<f32> {
    (0..cout)
        .into_par_iter()
        .map(|o| {
            (0..batch).map(|b| dys[(b * cout + o) * p..(b * cout + o + 1) * p].iter().map(|&v| v as f64).sum::<f64>()).sum::<f64>() as f32
        })
        .collect()
}

/// The forward pass.
fn forward(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>, bias: &FloatTensor<Flex>, spec: ConvSpec) -> FloatTensor<Flex> {
    let g = Geometry::of(x, weight, spec);
    let (xc, wc, bc) = (contiguous(x), contiguous(weight), contiguous(bias));
    let (xs, ws, bs) = (f32s(&xc), f32s(&wc), f32s(&bc));
    if g.direct() {
        return forward_direct(&g, xs, ws, bs);
    }
    let (k, p, cout) = (g.k(), g.p(), g.cout);
    let chunk = g.chunk().clamp(1, g.batch.max(1));
    let mut out = vec![0f32; g.batch * cout * p];
    let mut cols = vec![0f32; k * chunk * p];
    let mut b0 = 0;
    while b0 < g.batch {
        let nb = chunk.min(g.batch - b0);
        let n = nb * p;
        im2col(&g, xs, b0, nb, &mut cols[..k * n]);
        let images = &mut out[b0 * cout * p..(b0 + nb) * cout * p];
        // One product per image into its [C_out, P] block, images in parallel: each output
        // is summed in the same order whatever the batch holds, so a data-parallel shard of a
        // batch computes exactly the rows the whole batch would.
        let cols = &cols[..k * n];
        images.par_chunks_mut(cout * p).enumerate().for_each(|(b, dst)| {
            matmul(cout, p, k, dst, false, ws, k, 1, &cols[b * p..], n, 1, Threads::One);
            for (o, row) in dst.chunks_exact_mut(p).enumerate() {
                row.iter_mut().for_each(|v| *v += bs[o]);
            }
        });
        b0 += nb;
    }
    tensor_from(out, vec![g.batch, cout, g.ho, g.wo])
}

/// Gradients of the backward pass, each only when asked for.
struct ConvGrads {
    x: Option<Vec<f32>>,
    weight: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
}

/// The backward pass: `dx`, `dW`, `db` from `dy` (rebuilding the unfolded input per chunk).
fn backward(dy: &FloatTensor<Flex>, state: &ConvState, want: [bool; 3]) -> ConvGrads {
    let g = Geometry::of(&state.x, &state.weight, state.spec);
    let (dyc, xc, wc) = (contiguous(dy), contiguous(&state.x), contiguous(&state.weight));
    let (dys, xs, ws) = (f32s(&dyc), f32s(&xc), f32s(&wc));
    if g.direct() {
        return backward_direct(&g, dys, xs, ws, want);
    }
    backward_im2col(&g, dys, xs, ws, want)
}

/// The backward pass through im2col and packed products, chunk by chunk.
fn backward_im2col(g: &Geometry, dys: &[f32], xs: &[f32], ws: &[f32], want: [bool; 3]) -> ConvGrads {
    let g = *g;
    let (k, p, cout) = (g.k(), g.p(), g.cout);
    let chunk = g.chunk().clamp(1, g.batch.max(1));
    let mut dx = if want[0] { vec![0f32; xs.len()] } else { Vec::new() };
    let mut dw = if want[1] { vec![0f32; cout * k] } else { Vec::new() };
    let mut db = vec![0f64; cout];
    let mut cols = vec![0f32; k * chunk * p];
    let mut dym = vec![0f32; cout * chunk * p];
    let mut b0 = 0;
    while b0 < g.batch {
        let nb = chunk.min(g.batch - b0);
        let n = nb * p;
        // dY of the chunk as [C_out, nb·P].
        dym[..cout * n].par_chunks_mut(n).enumerate().for_each(|(o, row)| {
            for b in 0..nb {
                let src = &dys[((b0 + b) * cout + o) * p..((b0 + b) * cout + o + 1) * p];
                row[b * p..(b + 1) * p].copy_from_slice(src);
            }
        });
        if want[2] {
            for (o, row) in dym[..cout * n].chunks(n).enumerate() {
                db[o] += row.iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        if want[1] {
            im2col(&g, xs, b0, nb, &mut cols[..k * n]);
            // dW[C_out, K] += dY[C_out, n] · colsᵀ[n, K]
            matmul(cout, k, n, &mut dw, b0 > 0, &dym[..cout * n], n, 1, &cols[..k * n], 1, n, Threads::Pool);
        }
        if want[0] {
            // dcols[K, n] = Wᵀ[K, C_out] · dY[C_out, n], then scatter-add into dx.
            matmul(k, n, cout, &mut cols[..k * n], false, ws, 1, k, &dym[..cout * n], n, 1, Threads::Pool);
            col2im(&g, &cols[..k * n], b0, nb, &mut dx);
        }
        b0 += nb;
    }
    ConvGrads { x: want[0].then_some(dx), weight: want[1].then_some(dw), bias: want[2].then(|| db.into_iter().map(|v| v as f32).collect()) }
}

impl Conv2dBackend for Flex {
    fn im2col_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, spec: ConvSpec) -> FloatTensor<Self> {
        forward(&x, &weight, &bias, spec)
    }
}

/// What the backward needs: the input, the weight and the geometry.
#[derive(Clone, Debug)]
struct ConvState {
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    spec: ConvSpec,
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let want = [node_x.is_some(), node_w.is_some(), node_b.is_some()];
        let g = backward(&dy, &ops.state, want);
        if let (Some(node), Some(v)) = (node_x, g.x) {
            grads.register::<Flex>(node.id, tensor_from(v, ops.state.x.shape().to_vec()));
        }
        if let (Some(node), Some(v)) = (node_w, g.weight) {
            grads.register::<Flex>(node.id, tensor_from(v, ops.state.weight.shape().to_vec()));
        }
        if let (Some(node), Some(v)) = (node_b, g.bias) {
            let n = v.len();
            grads.register::<Flex>(node.id, tensor_from(v, vec![n]));
        }
    }
}

impl<C: CheckpointStrategy> Conv2dBackend for Autodiff<Flex, C> {
    fn im2col_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, spec: ConvSpec) -> FloatTensor<Self> {
        let (xp, xn) = x.into_parts();
        let (wp, wn) = weight.into_parts();
        let (bp, bn) = bias.into_parts();
        match ConvBackward.prepare::<C>([xn, wn, bn]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = forward(&xp, &wp, &bp, spec);
                prep.finish(ConvState { x: xp, weight: wp, spec }, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&xp, &wp, &bp, spec)),
        }
    }
}
