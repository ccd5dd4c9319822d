//! The forward pass of a narrow fused MLP (`dim <= 4`, e.g. the spiral and the 2-D benchmark
//! problems) in one sweep per row, on AVX-512.
//!
//! For `f(y) = W2 tanh(W1 y + b1) + b2` with a state of width `d <= 4` and hidden width `h`,
//! almost all of the work is the `h` activations of each row. Done as separate passes (pre-
//! activations, then `tanh`, then `d` dot products), every activation is written and read back
//! twice. Here each block of 16 (`f32`) or 8 (`f64`) hidden units goes through all three steps in
//! registers:
//!
//! ```text
//! z = b1[J] + Σ_i y_i W1[J, i]        (d fused multiply-adds; W1 read column-wise as W1ᵀ rows)
//! s_i += tanh(z) * W2[i, J]            (the tanh of crate::vector_tanh; d accumulators)
//! f_i = b2_i + Σ_lanes s_i             (once per row)
//! ```
//!
//! The activations are never stored, so this serves evaluations only (a VJP needs them and
//! takes the general path). Masked loads cover `h` that is not a multiple of the lanes.

/// `out[r, :] = W2 tanh(W1 y[r, :] + b1) + b2` for every row; `w1t` is `W1ᵀ` (`d x h`), `w2` is
/// `d x h`. Returns `false`, touching nothing, where the kernels cannot run (no AVX-512F, or
/// `d > 4`).
pub(crate) fn forward_f32(y: &[f32], w1t: &[f32], b1: &[f32], w2: &[f32], b2: &[f32], out: &mut [f32], dim: usize, hidden: usize) -> bool {
    if !crate::thin_gemm::avx512() || dim == 0 || dim > 4 {
        return false;
    }
    assert!(w1t.len() >= dim * hidden && b1.len() >= hidden && w2.len() >= dim * hidden && b2.len() >= dim && out.len() == y.len());
    assert_eq!(y.len() % dim, 0, "mlp_narrow: rows of {dim} entries");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX-512F is present; the asserted lengths cover every access.
        unsafe {
            let rows = y.len() / dim;
            let p = (y.as_ptr(), w1t.as_ptr(), b1.as_ptr(), w2.as_ptr(), b2.as_ptr(), out.as_mut_ptr());
            match dim {
                1 => x86::rows_f32::<1>(p, rows, hidden),
                2 => x86::rows_f32::<2>(p, rows, hidden),
                3 => x86::rows_f32::<3>(p, rows, hidden),
                _ => x86::rows_f32::<4>(p, rows, hidden),
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The `f64` counterpart of [`forward_f32`].
pub(crate) fn forward_f64(y: &[f64], w1t: &[f64], b1: &[f64], w2: &[f64], b2: &[f64], out: &mut [f64], dim: usize, hidden: usize) -> bool {
    if !crate::thin_gemm::avx512() || dim == 0 || dim > 4 {
        return false;
    }
    assert!(w1t.len() >= dim * hidden && b1.len() >= hidden && w2.len() >= dim * hidden && b2.len() >= dim && out.len() == y.len());
    assert_eq!(y.len() % dim, 0, "mlp_narrow: rows of {dim} entries");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: as in `forward_f32`.
        unsafe {
            let rows = y.len() / dim;
            let p = (y.as_ptr(), w1t.as_ptr(), b1.as_ptr(), w2.as_ptr(), b2.as_ptr(), out.as_mut_ptr());
            match dim {
                1 => x86::rows_f64::<1>(p, rows, hidden),
                2 => x86::rows_f64::<2>(p, rows, hidden),
                3 => x86::rows_f64::<3>(p, rows, hidden),
                _ => x86::rows_f64::<4>(p, rows, hidden),
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::vector_tanh::x86::{tanh8, tanh16};
    use std::arch::x86_64::*;

    /// `(y, w1t, b1, w2, b2, out)`.
    pub(super) type Ptrs<T> = (*const T, *const T, *const T, *const T, *const T, *mut T);

    /// All rows, `D` state entries each.
    ///
    /// # Safety
    /// AVX-512F; `y` and `out` hold `rows * D` entries, `w1t` and `w2` `D * hidden`, `b1`
    /// `hidden`, `b2` `D`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_f32<const D: usize>(p: Ptrs<f32>, rows: usize, hidden: usize) {
        let (y, w1t, b1, w2, b2, out) = p;
        unsafe {
            for r in 0..rows {
                let yv: [__m512; D] = std::array::from_fn(|i| _mm512_set1_ps(*y.add(r * D + i)));
                let mut acc = [_mm512_setzero_ps(); D];
                let mut j = 0;
                while j < hidden {
                    let left = hidden - j;
                    let m: __mmask16 = if left >= 16 { !0 } else { (1u16 << left) - 1 };
                    let mut z = _mm512_maskz_loadu_ps(m, b1.add(j));
                    for i in 0..D {
                        z = _mm512_fmadd_ps(yv[i], _mm512_maskz_loadu_ps(m, w1t.add(i * hidden + j)), z);
                    }
                    // Masked-off lanes: z = 0, tanh 0 = 0, and W2's lanes load as 0.
                    let t = tanh16(z);
                    for i in 0..D {
                        acc[i] = _mm512_fmadd_ps(t, _mm512_maskz_loadu_ps(m, w2.add(i * hidden + j)), acc[i]);
                    }
                    j += 16;
                }
                for i in 0..D {
                    *out.add(r * D + i) = *b2.add(i) + _mm512_reduce_add_ps(acc[i]);
                }
            }
        }
    }

    /// The `f64` counterpart of [`rows_f32`].
    ///
    /// # Safety
    /// As for [`rows_f32`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_f64<const D: usize>(p: Ptrs<f64>, rows: usize, hidden: usize) {
        let (y, w1t, b1, w2, b2, out) = p;
        unsafe {
            for r in 0..rows {
                let yv: [__m512d; D] = std::array::from_fn(|i| _mm512_set1_pd(*y.add(r * D + i)));
                let mut acc = [_mm512_setzero_pd(); D];
                let mut j = 0;
                while j < hidden {
                    let left = hidden - j;
                    let m: __mmask8 = if left >= 8 { !0 } else { (1u8 << left) - 1 };
                    let mut z = _mm512_maskz_loadu_pd(m, b1.add(j));
                    for i in 0..D {
                        z = _mm512_fmadd_pd(yv[i], _mm512_maskz_loadu_pd(m, w1t.add(i * hidden + j)), z);
                    }
                    let t = tanh8(z);
                    for i in 0..D {
                        acc[i] = _mm512_fmadd_pd(t, _mm512_maskz_loadu_pd(m, w2.add(i * hidden + j)), acc[i]);
                    }
                    j += 8;
                }
                for i in 0..D {
                    *out.add(r * D + i) = *b2.add(i) + _mm512_reduce_add_pd(acc[i]);
                }
            }
        }
    }
}
