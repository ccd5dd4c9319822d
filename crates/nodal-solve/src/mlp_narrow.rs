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

/// The checked entry point for one precision: `forward_f32` and `forward_f64`.
macro_rules! narrow_forward {
    ($(#[$doc:meta])* $name:ident, $t:ty, $rows:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name(y: &[$t], w1t: &[$t], b1: &[$t], w2: &[$t], b2: &[$t], out: &mut [$t], dim: usize, hidden: usize) -> bool {
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
                        1 => x86::$rows::<1>(p, rows, hidden),
                        2 => x86::$rows::<2>(p, rows, hidden),
                        3 => x86::$rows::<3>(p, rows, hidden),
                        _ => x86::$rows::<4>(p, rows, hidden),
                    }
                }
                true
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        }
    };
}

narrow_forward!(
    /// `out[r, :] = W2 tanh(W1 y[r, :] + b1) + b2` for every row; `w1t` is `W1ᵀ` (`d x h`), `w2`
    /// is `d x h`. Returns `false`, touching nothing, where the kernels cannot run (no AVX-512F,
    /// or `d > 4`).
    forward_f32,
    f32,
    rows_f32
);
narrow_forward!(
    /// The `f64` counterpart of [`forward_f32`].
    forward_f64,
    f64,
    rows_f64
);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::vector_tanh::x86::{tanh8, tanh16};
    use std::arch::x86_64::*;

    /// `(y, w1t, b1, w2, b2, out)`.
    pub(super) type Ptrs<T> = (*const T, *const T, *const T, *const T, *const T, *mut T);

    /// The row sweep for one precision: `rows_f32` (16 lanes) and `rows_f64` (8 lanes).
    macro_rules! rows {
        ($name:ident, $t:ty, $v:ty, $mask:ty, $lanes:expr, $set1:ident, $zero:ident, $load:ident, $fmadd:ident, $reduce:ident, $tanh:ident) => {
            /// All rows, `D` state entries each.
            ///
            /// # Safety
            /// AVX-512F; `y` and `out` hold `rows * D` entries, `w1t` and `w2` `D * hidden`, `b1`
            /// `hidden`, `b2` `D`.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name<const D: usize>(p: Ptrs<$t>, rows: usize, hidden: usize) {
                let (y, w1t, b1, w2, b2, out) = p;
                unsafe {
                    for r in 0..rows {
                        let yv: [$v; D] = std::array::from_fn(|i| $set1(*y.add(r * D + i)));
                        let mut acc = [$zero(); D];
                        let mut j = 0;
                        while j < hidden {
                            let left = hidden - j;
                            let m: $mask = if left >= $lanes { !0 } else { (1 << left) - 1 };
                            let mut z = $load(m, b1.add(j));
                            for i in 0..D {
                                z = $fmadd(yv[i], $load(m, w1t.add(i * hidden + j)), z);
                            }
                            // Masked-off lanes: z = 0, tanh 0 = 0, and W2's lanes load as 0.
                            let t = $tanh(z);
                            for i in 0..D {
                                acc[i] = $fmadd(t, $load(m, w2.add(i * hidden + j)), acc[i]);
                            }
                            j += $lanes;
                        }
                        for i in 0..D {
                            *out.add(r * D + i) = *b2.add(i) + $reduce(acc[i]);
                        }
                    }
                }
            }
        };
    }

    rows!(
        rows_f32,
        f32,
        __m512,
        __mmask16,
        16,
        _mm512_set1_ps,
        _mm512_setzero_ps,
        _mm512_maskz_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_reduce_add_ps,
        tanh16
    );
    rows!(
        rows_f64,
        f64,
        __m512d,
        __mmask8,
        8,
        _mm512_set1_pd,
        _mm512_setzero_pd,
        _mm512_maskz_loadu_pd,
        _mm512_fmadd_pd,
        _mm512_reduce_add_pd,
        tanh8
    );
}
