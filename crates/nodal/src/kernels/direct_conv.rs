//! Convolution (no dilation) as an implicit GEMM on zero-padded channels-last maps (AVX-512, `f32`).
//!
//! With the input stored as `x̃[b, y, x, c]` (height and width already padded with zeros) and
//! the weight packed as `W̃[t, c, o]` (`t = (i, j)` a kernel offset, `o` the output channel,
//! padded with zeros to a multiple of 16), every output pixel `p = (b, oy, ox)` is
//!
//! ```text
//! y[p, o] = Σ_t Σ_c x̃[base(p) + tap(t) + c] · W̃[t, c, o]
//! base(p) = ((b·H̃ + oy·s_h)·W̃idth + ox·s_w)·C        tap(i, j) = (i·W̃idth + j)·C
//! ```
//!
//! a product whose left operand is read straight from the padded map: no unfolded copy, no
//! bounds checks. A register tile holds six pixels by 64 output channels (24 AVX-512
//! accumulators); per input channel it broadcasts six values and loads four rows of the packed
//! weight (Georganas et al. 2018 describe the same direct, channels-blocked scheme used by
//! oneDNN). Each output is summed in the same order (offsets, then channels) whatever else the
//! batch holds.
//!
//! For stride 1 and no dilation the input gradient is the same operation: `dy` padded by
//! `k − 1 − pad` on each side, convolved with the weight flipped in space and with its channel
//! axes swapped. The weight gradient
//!
//! ```text
//! dW̃[t, c, o] = Σ_p x̃[base(p) + tap(t) + c] · dy[p, o]
//! ```
//!
//! runs over chunks of [`PIXEL_CHUNK`] pixels (so a chunk of `dy` stays in cache), with six input
//! channels by 64 output channels in registers; the chunks' partial sums are added in a fixed
//! order, so the result does not depend on the number of threads.

use rayon::prelude::*;

/// Lanes of one AVX-512 register of `f32`.
const LANES: usize = 16;
/// Pixels (forward) or input channels (weight gradient) per register tile.
const ROWS: usize = 6;
/// Registers of output channels per register tile (64 channels).
const REGS: usize = 4;
/// Pixels per task of the forward.
const PIXEL_TASK: usize = 96;
/// Pixels per partial sum of the weight gradient.
const PIXEL_CHUNK: usize = 256;

/// Whether the AVX-512 kernels can run on this CPU.
pub(crate) fn available() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `n` rounded up to a whole number of registers.
pub(crate) fn padded_channels(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// The sizes of one convolution over padded channels-last maps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Plan {
    /// Images.
    pub batch: usize,
    /// Input channels (the innermost axis of the padded map).
    pub channels: usize,
    /// Padded input height and width.
    pub padded: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (the forward and the weight gradient; the input gradient is the convolution
    /// described above only at stride 1).
    pub stride: [usize; 2],
}

impl Plan {
    /// Output height and width: `(padded − kernel) / stride + 1`.
    pub fn output(&self) -> [usize; 2] {
        [(self.padded[0] - self.kernel[0]) / self.stride[0] + 1, (self.padded[1] - self.kernel[1]) / self.stride[1] + 1]
    }

    /// Output pixels over the batch.
    pub fn pixels(&self) -> usize {
        let [ho, wo] = self.output();
        self.batch * ho * wo
    }

    /// Offset of output pixel `p`'s window in the padded map.
    fn base(&self, p: usize) -> usize {
        let [ho, wo] = self.output();
        let (b, r) = (p / (ho * wo), p % (ho * wo));
        ((b * self.padded[0] + (r / wo) * self.stride[0]) * self.padded[1] + (r % wo) * self.stride[1]) * self.channels
    }

    /// Offsets of the kernel's positions relative to a window.
    fn taps(&self) -> Vec<usize> {
        let [kh, kw] = self.kernel;
        (0..kh * kw).map(|t| ((t / kw) * self.padded[1] + t % kw) * self.channels).collect()
    }

    /// Values of the padded map.
    fn map_len(&self) -> usize {
        self.batch * self.padded[0] * self.padded[1] * self.channels
    }
}

/// `x: [B, C, H, W]` as a zero-padded channels-last map `[B, H + top + bottom, W + left + right,
/// stride]` (channels `C..stride` zero).
pub(crate) fn to_padded_channels_last(
    x: &[f32],
    [b, c, h, w]: [usize; 4],
    [top, bottom, left, right]: [usize; 4],
    stride: usize,
) -> Vec<f32> {
    assert!(x.len() == b * c * h * w && stride >= c);
    let (hp, wp) = (h + top + bottom, w + left + right);
    let mut out = vec![0f32; b * hp * wp * stride];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(hp * wp * stride).enumerate().for_each(|(image, dst)| {
        let src = &x[image * c * h * w..(image + 1) * c * h * w];
        for y in 0..h {
            let row = &mut dst[((y + top) * wp + left) * stride..((y + top) * wp + left + w) * stride];
            for ch in 0..c {
                let line = &src[(ch * h + y) * w..(ch * h + y + 1) * w];
                for (xx, &v) in line.iter().enumerate() {
                    row[xx * stride + ch] = v;
                }
            }
        }
    });
    out
}

/// Channels-last rows `[B·H·W, stride]` as `[B, C, H, W]`, adding `bias[c]` when given.
pub(crate) fn to_channels_first(src: &[f32], [b, c, h, w]: [usize; 4], stride: usize, bias: Option<&[f32]>) -> Vec<f32> {
    assert!(src.len() == b * h * w * stride && stride >= c);
    let hw = h * w;
    let mut out = vec![0f32; b * c * hw];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(c * hw).enumerate().for_each(|(image, dst)| {
        let rows = &src[image * hw * stride..(image + 1) * hw * stride];
        for (ch, plane) in dst.chunks_exact_mut(hw).enumerate() {
            let add = bias.map_or(0.0, |bias| bias[ch]);
            for (p, v) in plane.iter_mut().enumerate() {
                *v = rows[p * stride + ch] + add;
            }
        }
    });
    out
}

/// The weight `[O, C, k_h, k_w]` packed as `[k_h·k_w, C, padded(O)]` for the forward, or, with
/// `for_input_gradient`, as `[k_h·k_w, O, padded(C)]` flipped in space (the transposed
/// convolution that gives the input gradient).
pub(crate) fn pack_weight(w: &[f32], [o, c, kh, kw]: [usize; 4], for_input_gradient: bool) -> Vec<f32> {
    assert_eq!(w.len(), o * c * kh * kw);
    let taps = kh * kw;
    let (rows, cols) = if for_input_gradient { (o, c) } else { (c, o) };
    let stride = padded_channels(cols);
    let mut out = vec![0f32; taps * rows * stride];
    for oc in 0..o {
        for ic in 0..c {
            for t in 0..taps {
                let v = w[(oc * c + ic) * taps + t];
                let (tap, row, col) = if for_input_gradient { (taps - 1 - t, oc, ic) } else { (t, ic, oc) };
                out[(tap * rows + row) * stride + col] = v;
            }
        }
    }
    out
}

/// The packed weight gradient `[k_h·k_w, C, padded(O)]` as `[O, C, k_h, k_w]`.
pub(crate) fn unpack_weight_gradient(packed: &[f32], [o, c, kh, kw]: [usize; 4]) -> Vec<f32> {
    let (taps, stride) = (kh * kw, padded_channels(o));
    assert_eq!(packed.len(), taps * c * stride);
    let mut out = vec![0f32; o * c * taps];
    for oc in 0..o {
        for ic in 0..c {
            for t in 0..taps {
                out[(oc * c + ic) * taps + t] = packed[(t * c + ic) * stride + oc];
            }
        }
    }
    out
}

/// The forward tile over `count` pixels, six at a time, for every block of output channels:
/// pixel `i` reads its window at `base(i)` plus each tap's map offset, and writes its
/// `w_stride` output channels at `out[i·out_step..]`.
///
/// # Safety
/// AVX-512F is available; for every pixel, tap and channel the map and weight reads lie inside
/// `map` and `packed` (rows of `w_stride`, a multiple of 16, values); `out` holds every pixel's row.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_pixels(
    count: usize,
    base: impl Fn(usize) -> usize,
    map: &[f32],
    taps: &[(usize, usize)],
    channels: usize,
    packed: &[f32],
    w_stride: usize,
    out: &mut [f32],
    out_step: usize,
) {
    assert!(count == 0 || out.len() >= (count - 1) * out_step + w_stride);
    let mut r = 0;
    while r < count {
        let rows = (count - r).min(ROWS);
        let mut bases = [0usize; ROWS];
        for (i, b) in bases.iter_mut().enumerate().take(rows) {
            *b = base(r + i);
        }
        let mut j0 = 0;
        while j0 < w_stride {
            let regs = ((w_stride - j0) / LANES).min(REGS);
            // SAFETY: the caller's contract; the tile writes rows `r..r + rows` of `out` at
            // columns `j0..j0 + 16·regs ≤ w_stride`.
            unsafe {
                x86::forward_tile(
                    rows,
                    regs,
                    map.as_ptr(),
                    &bases,
                    taps,
                    channels,
                    packed.as_ptr().add(j0),
                    w_stride,
                    out.as_mut_ptr().add(r * out_step + j0),
                    out_step,
                );
            }
            j0 += regs * LANES;
        }
        r += rows;
    }
}

/// `y[p, :] = Σ_t Σ_c x̃[base(p) + tap(t) + c] · W̃[t, c, :]` for every output pixel `p`, as
/// rows of `out_stride = padded(O)` values. `packed` is [`pack_weight`]'s layout with
/// `out_stride` columns.
pub(crate) fn convolve(plan: &Plan, map: &[f32], packed: &[f32], out_stride: usize) -> Vec<f32> {
    let taps: Vec<(usize, usize)> = plan.taps().into_iter().enumerate().map(|(t, off)| (off, t * plan.channels * out_stride)).collect();
    assert!(available() && out_stride % LANES == 0);
    assert!(map.len() == plan.map_len() && packed.len() == taps.len() * plan.channels * out_stride);
    let pixels = plan.pixels();
    let mut out = vec![0f32; pixels * out_stride];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(PIXEL_TASK * out_stride).enumerate().for_each(|(task, dst)| {
        let first = task * PIXEL_TASK;
        let count = dst.len() / out_stride;
        // SAFETY: `available()` holds; every window `base(p) + tap(t) + c` with `c < channels`
        // lies in `map` (the output size is the padded size less the kernel plus one), the packed
        // rows hold `out_stride` values, and `dst` holds `count` rows of `out_stride` values.
        unsafe { tile_pixels(count, |i| plan.base(first + i), map, &taps, plan.channels, packed, out_stride, dst, out_stride) };
    });
    out
}

/// The sizes of a strided convolution, for [`input_gradient_strided`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Strided {
    /// `[B, C, H, W]` of the input.
    pub input: [usize; 4],
    /// `[O, C, k_h, k_w]` of the weight.
    pub weight: [usize; 4],
    /// `[H_out, W_out]`.
    pub output: [usize; 2],
    /// `[s_h, s_w]`.
    pub stride: [usize; 2],
    /// `[top, bottom, left, right]`.
    pub padding: [usize; 4],
}

/// The input gradient of a convolution of any stride (no dilation), the transposed convolution
///
/// ```text
/// dx[b, iy, ix, c] = Σ_{i, j} Σ_o dy[b, (iy + top − i)/s_h, (ix + left − j)/s_w, o] · W[o, c, i, j]
/// ```
///
/// over the offsets `(i, j)` that divide exactly, with `dy` read as zero outside its map. The
/// input pixels of a row fall into `s_w` classes by `(ix + left) mod s_w`: the pixels of one
/// class share their offsets and lie one output column apart, so six of them make a register
/// tile of the forward kernel. `w` is the weight `[O, C, k_h, k_w]` and `dy` is `[B, O, H_out,
/// W_out]`; returns rows `[B·H·W, padded(C)]`.
pub(crate) fn input_gradient_strided(dy: &[f32], w: &[f32], g: Strided) -> Vec<f32> {
    let [batch, c, h, wd] = g.input;
    let [o, _, kh, kw] = g.weight;
    let [ho, wo] = g.output;
    let [sh, sw] = g.stride;
    let [top, bottom, left, right] = g.padding;
    assert!(available() && sh >= 1 && sw >= 1 && dy.len() == batch * o * ho * wo);
    // Zero rows and columns of dy so that every offset that divides lands inside the map.
    let lead = |k: usize, pad: usize, s: usize| (k - 1).saturating_sub(pad).div_ceil(s);
    let trail = |size: usize, pad: usize, s: usize, out: usize| ((size - 1 + pad) / s + 1).saturating_sub(out);
    let pads = [lead(kh, top, sh), trail(h, top, sh, ho), lead(kw, left, sw), trail(wd, left, sw, wo)];
    let _ = (bottom, right); // the output size already reflects them
    let (hp, wp) = (ho + pads[0] + pads[1], wo + pads[2] + pads[3]);
    let map = to_padded_channels_last(dy, [batch, o, ho, wo], pads, o);
    let packed = pack_weight(w, g.weight, true);
    let stride = padded_channels(c);
    let taps = kh * kw;
    let mut out = vec![0f32; batch * h * wd * stride];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(wd * stride).enumerate().for_each(|(row, dst)| {
        let (b, iy) = (row / h, row % h);
        let mut offsets: Vec<(usize, usize)> = Vec::with_capacity(taps);
        for class in 0..sw {
            let first = (class + sw - left % sw) % sw;
            if first >= wd {
                continue;
            }
            let count = (wd - first).div_ceil(sw);
            offsets.clear();
            for i in 0..kh {
                let ny = (iy + top) as isize - i as isize;
                if ny.rem_euclid(sh as isize) != 0 {
                    continue;
                }
                let oy = (ny.div_euclid(sh as isize) + pads[0] as isize) as usize;
                for j in 0..kw {
                    let nx = (first + left) as isize - j as isize;
                    if nx.rem_euclid(sw as isize) != 0 {
                        continue;
                    }
                    let ox = (nx.div_euclid(sw as isize) + pads[2] as isize) as usize;
                    offsets.push((((b * hp + oy) * wp + ox) * o, (taps - 1 - (i * kw + j)) * o * stride));
                }
            }
            // SAFETY: `available()` holds; the zero rows and columns added to `dy` keep every
            // read `offset + i·O + o' < map.len()` (the last pixel of a class reads output column
            // `(W − 1 + left)/s_w` at most); the packed rows hold `stride` values; pixel `first +
            // s_w·i` of this row is inside `dst`.
            unsafe { tile_pixels(count, |i| i * o, &map, &offsets, o, &packed, stride, &mut dst[first * stride..], sw * stride) };
        }
    });
    out
}

/// `dW̃[t, c, :] = Σ_p x̃[base(p) + tap(t) + c] · dy[p, :]` with `dy` as rows of `dy_stride`
/// values (a multiple of 16) per output pixel; packed like [`pack_weight`]'s forward layout.
pub(crate) fn weight_gradient(plan: &Plan, map: &[f32], dy: &[f32], dy_stride: usize) -> Vec<f32> {
    let taps = plan.taps();
    let pixels = plan.pixels();
    let c = plan.channels;
    assert!(available() && dy_stride % LANES == 0);
    assert!(map.len() == plan.map_len() && dy.len() == pixels * dy_stride);
    let size = taps.len() * c * dy_stride;
    let chunks = pixels.div_ceil(PIXEL_CHUNK);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let first = chunk * PIXEL_CHUNK;
            let count = PIXEL_CHUNK.min(pixels - first);
            let bases: Vec<usize> = (first..first + count).map(|p| plan.base(p)).collect();
            let mut part = vec![0f32; size];
            for (t, &tap) in taps.iter().enumerate() {
                let mut c0 = 0;
                while c0 < c {
                    let rows = (c - c0).min(ROWS);
                    let mut j0 = 0;
                    while j0 < dy_stride {
                        let regs = ((dy_stride - j0) / LANES).min(REGS);
                        // SAFETY: `available()` holds; `base(p) + tap + c0 + rows ≤ map.len()`
                        // for every pixel of the chunk, each `dy` row holds `dy_stride ≥ j0 +
                        // 16·regs` values, and the tile writes rows `(t·C + c0 + i)` of `part`
                        // at columns `j0..j0 + 16·regs`.
                        unsafe {
                            x86::weight_tile(
                                rows,
                                regs,
                                map.as_ptr().add(tap + c0),
                                &bases,
                                dy.as_ptr().add(first * dy_stride + j0),
                                dy_stride,
                                part.as_mut_ptr().add((t * c + c0) * dy_stride + j0),
                            );
                        }
                        j0 += regs * LANES;
                    }
                    c0 += rows;
                }
            }
            part
        })
        .collect();
    let mut total = vec![0f32; size];
    total.par_chunks_mut(4096).enumerate().for_each(|(block, dst)| {
        let (lo, len) = (block * 4096, dst.len());
        for part in &partials {
            for (d, s) in dst.iter_mut().zip(&part[lo..lo + len]) {
                *d += s;
            }
        }
    });
    total
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LANES, ROWS};
    use std::arch::x86_64::*;

    /// Dispatches a `rows x regs` forward tile to its monomorphic kernel.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_tile(
        rows: usize,
        regs: usize,
        map: *const f32,
        bases: &[usize; ROWS],
        taps: &[(usize, usize)],
        channels: usize,
        w: *const f32,
        w_stride: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        macro_rules! go {
            ($r:literal) => {
                match regs {
                    4 => forward::<$r, 4>(map, bases, taps, channels, w, w_stride, out, out_stride),
                    3 => forward::<$r, 3>(map, bases, taps, channels, w, w_stride, out, out_stride),
                    2 => forward::<$r, 2>(map, bases, taps, channels, w, w_stride, out, out_stride),
                    _ => forward::<$r, 1>(map, bases, taps, channels, w, w_stride, out, out_stride),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match rows {
                6 => go!(6),
                5 => go!(5),
                4 => go!(4),
                3 => go!(3),
                2 => go!(2),
                _ => go!(1),
            }
        }
    }

    /// `R` pixels by `V` registers of output channels: for each `(map offset, weight offset)`
    /// in `taps` and each channel `c`, `out[i, :] += map[bases[i] + offset + c] · w[weight
    /// offset + c·w_stride, :]`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward<const R: usize, const V: usize>(
        map: *const f32,
        bases: &[usize; ROWS],
        taps: &[(usize, usize)],
        channels: usize,
        w: *const f32,
        w_stride: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        unsafe {
            for &(tap, weights) in taps {
                let mut px = [map; R];
                for (i, p) in px.iter_mut().enumerate() {
                    *p = map.add(bases[i] + tap);
                }
                let wt = w.add(weights);
                for c in 0..channels {
                    let wrow = wt.add(c * w_stride);
                    let mut wv = [_mm512_setzero_ps(); V];
                    for (v, x) in wv.iter_mut().enumerate() {
                        *x = _mm512_loadu_ps(wrow.add(LANES * v));
                    }
                    for (i, ai) in acc.iter_mut().enumerate() {
                        let xb = _mm512_set1_ps(*px[i].add(c));
                        for (v, a) in ai.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(xb, wv[v], *a);
                        }
                    }
                }
            }
            for (i, ai) in acc.iter().enumerate() {
                for (v, a) in ai.iter().enumerate() {
                    _mm512_storeu_ps(out.add(i * out_stride + LANES * v), *a);
                }
            }
        }
    }

    /// Dispatches a `rows x regs` weight-gradient tile to its monomorphic kernel.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weight_tile(
        rows: usize,
        regs: usize,
        map: *const f32,
        bases: &[usize],
        dy: *const f32,
        stride: usize,
        out: *mut f32,
    ) {
        macro_rules! go {
            ($r:literal) => {
                match regs {
                    4 => weight::<$r, 4>(map, bases, dy, stride, out),
                    3 => weight::<$r, 3>(map, bases, dy, stride, out),
                    2 => weight::<$r, 2>(map, bases, dy, stride, out),
                    _ => weight::<$r, 1>(map, bases, dy, stride, out),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match rows {
                6 => go!(6),
                5 => go!(5),
                4 => go!(4),
                3 => go!(3),
                2 => go!(2),
                _ => go!(1),
            }
        }
    }

    /// `R` input channels by `V` registers of output channels, summed over the chunk's pixels.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn weight<const R: usize, const V: usize>(map: *const f32, bases: &[usize], dy: *const f32, stride: usize, out: *mut f32) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        unsafe {
            for (p, &base) in bases.iter().enumerate() {
                let drow = dy.add(p * stride);
                let mut dv = [_mm512_setzero_ps(); V];
                for (v, x) in dv.iter_mut().enumerate() {
                    *x = _mm512_loadu_ps(drow.add(LANES * v));
                }
                let px = map.add(base);
                for (i, ai) in acc.iter_mut().enumerate() {
                    let xb = _mm512_set1_ps(*px.add(i));
                    for (v, a) in ai.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(xb, dv[v], *a);
                    }
                }
            }
            for (i, ai) in acc.iter().enumerate() {
                for (v, a) in ai.iter().enumerate() {
                    _mm512_storeu_ps(out.add(i * stride + LANES * v), *a);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    //! Never called: [`super::available`] is false off x86-64.
    use super::ROWS;

    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn forward_tile(
        _: usize,
        _: usize,
        _: *const f32,
        _: &[usize; ROWS],
        _: &[usize],
        _: usize,
        _: *const f32,
        _: usize,
        _: *mut f32,
    ) {
        unreachable!("the direct convolution needs AVX-512")
    }

    pub(super) unsafe fn weight_tile(_: usize, _: usize, _: *const f32, _: &[usize], _: *const f32, _: usize, _: *mut f32) {
        unreachable!("the direct convolution needs AVX-512")
    }
}
