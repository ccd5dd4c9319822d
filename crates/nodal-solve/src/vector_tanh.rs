//! `tanh` over whole slices, sixteen `f32` or eight `f64` lanes per AVX-512 instruction, with an
//! optional bias added first: the activation pass of the fused MLP dynamics ([`crate::mlp`]).
//!
//! The scalar functions of [`crate::fastmath`] are branch-free so that the compiler can vectorise
//! them, but it does so with 256-bit registers and without fused multiply-adds (it may not
//! contract `a * b + c` on its own). The `f64` function computes a series and an exponential with
//! a division for every element, so in the forward solve of a width-2 network that pass took
//! 88% of the time. These kernels evaluate the same approximations with 512-bit registers and
//! `vfmadd`:
//!
//! - `f32`: the [13/6] rational minimax fit `p(x)/q(x)` on `[-7.905, 7.905]`, with `x` clamped
//!   to that interval; a few ulp (at the clamp, `1 - 2e-7`: three ulp below the `1` that `tanh`
//!   rounds to there).
//! - `f64`: `tanh x = E / (E + 2)` with `E = e^{2x} - 1`; `E` by Cody-Waite reduction
//!   `2x = n ln 2 + r` and a degree-13 polynomial for `e^r - 1`, `2^n` from exponent bits. One
//!   formula for every `x` (no series branch, no sign handling), accurate in relative terms near
//!   zero too; absolute error below `4e-16`. `tanh(-0)` gives `+0`.
//!
//! NaN stays NaN (the solvers' finiteness checks rely on it) and `±inf` gives `±1` (`f64`) or
//! `±(1 - 2e-7)` (`f32`). Without
//! AVX-512F (checked at run time; `NODAL_THIN_GEMM=0` also turns it off) the scalar functions run.

use crate::scalar::Scalar;

/// `v <- tanh(v + bias[j])` for every row `v` of `act` (rows of `bias.len()` entries), or
/// `v <- tanh(v)` over all of `act` when `bias` is empty. `act.len()` must be a multiple of
/// `bias.len()`.
pub fn bias_tanh_rows<T: Scalar>(act: &mut [T], bias: &[T]) {
    if bias.is_empty() {
        if !T::tanh_simd(act, None) {
            for v in act.iter_mut() {
                *v = v.tanh_fast();
            }
        }
        return;
    }
    assert_eq!(act.len() % bias.len(), 0, "bias_tanh_rows: rows of {} entries", bias.len());
    for row in act.chunks_exact_mut(bias.len()) {
        if !T::tanh_simd(row, Some(bias)) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = (*v + *b).tanh_fast();
            }
        }
    }
}

/// The checked entry point for one precision: `tanh_f32_slice` and `tanh_f64_slice`.
macro_rules! tanh_slice {
    ($(#[$doc:meta])* $name:ident, $t:ty, $kernel:ident) => {
        $(#[$doc])*
        pub(crate) fn $name(v: &mut [$t], bias: Option<&[$t]>) -> bool {
            if !crate::thin_gemm::avx512() {
                return false;
            }
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(b) = bias {
                    assert_eq!(b.len(), v.len(), "vector_tanh: bias and row lengths");
                }
                // SAFETY: AVX-512F is present; the kernel reads and writes only `v.len()`
                // entries of `v` and of `bias` (whose length was checked).
                unsafe { x86::$kernel(v.as_mut_ptr(), bias.map(|b| b.as_ptr()), v.len()) };
                true
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (v, bias);
                false
            }
        }
    };
}

tanh_slice!(
    /// `v <- tanh(v (+ b))` on `f32` lanes; `false` (nothing touched) without AVX-512F.
    tanh_f32_slice,
    f32,
    tanh_f32
);
tanh_slice!(
    /// `v <- tanh(v (+ b))` on `f64` lanes; `false` (nothing touched) without AVX-512F.
    tanh_f64_slice,
    f64,
    tanh_f64
);

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    /// `tanh` of 16 lanes; see the module docs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn tanh16(x: __m512) -> __m512 {
        const CLAMP: f32 = 7.905_311;
        let c = |v: f32| _mm512_set1_ps(v);
        // `max`/`min` return their second operand when either is NaN, so NaN goes through.
        let x = _mm512_min_ps(c(CLAMP), _mm512_max_ps(c(-CLAMP), x));
        let x2 = _mm512_mul_ps(x, x);
        let mut p = c(-2.760_768_5e-16);
        for a in [2.000_187_9e-13, -8.604_671_5e-11, 5.122_297e-8, 1.485_722_4e-5, 6.372_619_3e-4, 4.893_524_6e-3] {
            p = _mm512_fmadd_ps(p, x2, c(a));
        }
        let p = _mm512_mul_ps(p, x);
        let mut q = c(1.198_258_4e-6);
        for b in [1.185_347_1e-4, 2.268_434_6e-3, 4.893_525_2e-3] {
            q = _mm512_fmadd_ps(q, x2, c(b));
        }
        _mm512_div_ps(p, q)
    }

    /// `tanh` of 8 lanes; see the module docs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn tanh8(x: __m512d) -> __m512d {
        const LOG2E: f64 = std::f64::consts::LOG2_E;
        const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
        const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
        const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
        let c = |v: f64| _mm512_set1_pd(v);
        // E = e^u - 1 for u = 2x clamped to [-40, 40] (tanh rounds to ±1 long before; `max` and
        // `min` return their second operand when either is NaN, so NaN goes through):
        // u = n ln 2 + r, |r| <= ln2 / 2, e^r - 1 = r (1 + r/2 + ... + r^12/13!), and
        // E = 2^n (e^r - 1) + (2^n - 1) in one rounding (2^n - 1 is exact). For n = 0, r = u
        // exactly, so E and tanh keep their relative accuracy near zero.
        let u = _mm512_min_pd(c(40.0), _mm512_max_pd(c(-40.0), _mm512_add_pd(x, x)));
        let t = _mm512_fmadd_pd(u, c(LOG2E), c(SHIFT));
        let n = _mm512_sub_pd(t, c(SHIFT));
        let r = _mm512_fnmadd_pd(n, c(LN2_LO), _mm512_fnmadd_pd(n, c(LN2_HI), u));
        let mut p = c(1.0 / 6_227_020_800.0);
        for k in [479_001_600.0, 39_916_800.0, 3_628_800.0, 362_880.0, 40_320.0, 5_040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0] {
            p = _mm512_fmadd_pd(p, r, c(1.0 / k));
        }
        let em1_r = _mm512_mul_pd(p, r);
        let bits = _mm512_slli_epi64::<52>(_mm512_add_epi64(
            _mm512_sub_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(SHIFT.to_bits() as i64)),
            _mm512_set1_epi64(1023),
        ));
        let scale = _mm512_castsi512_pd(bits);
        let em1 = _mm512_fmadd_pd(scale, em1_r, _mm512_sub_pd(scale, c(1.0)));
        // tanh x = (e^{2x} - 1) / (e^{2x} + 1) = E / (E + 2), for either sign of x.
        _mm512_div_pd(em1, _mm512_add_pd(em1, c(2.0)))
    }

    /// The slice loop for one precision: `tanh_f32` (16 lanes) and `tanh_f64` (8 lanes).
    macro_rules! slice_kernel {
        ($name:ident, $t:ty, $mask:ty, $lanes:expr, $load:ident, $add:ident, $store:ident, $tanh:ident) => {
            /// `v[i] <- tanh(v[i] + bias[i])` (or `tanh(v[i])`) for `i < n`, masked at the tail.
            ///
            /// # Safety
            /// AVX-512F must be present; `v` (and `bias`, when given) must hold `n` entries.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name(v: *mut $t, bias: Option<*const $t>, n: usize) {
                let mut i = 0;
                while i < n {
                    let left = n - i;
                    let mask: $mask = if left >= $lanes { !0 } else { (1 << left) - 1 };
                    unsafe {
                        let mut x = $load(mask, v.add(i));
                        if let Some(b) = bias {
                            x = $add(x, $load(mask, b.add(i)));
                        }
                        $store(v.add(i), mask, $tanh(x));
                    }
                    i += $lanes;
                }
            }
        };
    }

    slice_kernel!(tanh_f32, f32, __mmask16, 16, _mm512_maskz_loadu_ps, _mm512_add_ps, _mm512_mask_storeu_ps, tanh16);
    slice_kernel!(tanh_f64, f64, __mmask8, 8, _mm512_maskz_loadu_pd, _mm512_add_pd, _mm512_mask_storeu_pd, tanh8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against libm over [-20, 20] (and the edges), at the scalar functions' bounds: relative
    /// `5e-7` for `f32` (a few ulp), absolute `4e-16` for `f64`.
    #[test]
    fn vector_tanh_matches_libm() {
        let xs: Vec<f64> = (-40000..=40000)
            .map(|i| i as f64 * 5.03e-4)
            .chain([1e-9, -3e-5, 0.29999, 0.3, 0.30001, 7.9, 19.0, 25.0, 1e3, -1e300])
            .collect();
        let mut v32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let mut v64 = xs.clone();
        bias_tanh_rows(&mut v32, &[]);
        bias_tanh_rows(&mut v64, &[]);
        for ((&x, &g32), &g64) in xs.iter().zip(&v32).zip(&v64) {
            let want32 = (x as f32 as f64).tanh();
            let rel = (g32 as f64 - want32).abs() / want32.abs().max(1e-30);
            assert!(rel < 5e-7, "f32 tanh({x}) = {g32}, libm {want32}");
            assert!((g64 - x.tanh()).abs() < 4e-16, "f64 tanh({x}) = {g64}, libm {}", x.tanh());
        }
    }

    /// Near zero the `f64` kernel keeps relative accuracy (no `1 - 2/(e+1)` cancellation): a
    /// few ulp of `tanh(x)` down to `1e-300`.
    #[test]
    fn f64_tanh_is_relatively_accurate_near_zero() {
        let xs: Vec<f64> = (0..600).map(|i| 0.3 * 10f64.powf(-(i as f64) * 0.5)).flat_map(|x| [x, -x]).collect();
        let mut v = xs.clone();
        bias_tanh_rows(&mut v, &[]);
        for (&x, &got) in xs.iter().zip(&v) {
            let rel = (got - x.tanh()).abs() / x.tanh().abs();
            assert!(rel < 1e-15, "tanh({x:e}) = {got:e}, libm {:e}, relative error {rel:e}", x.tanh());
        }
    }

    #[test]
    fn vector_tanh_keeps_nan_and_saturates_infinities() {
        let mut v = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0];
        bias_tanh_rows(&mut v, &[]);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[1.0, -1.0, 0.0, 0.0]);
        let mut w = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, 1e-30, -1e-30];
        bias_tanh_rows(&mut w, &[]);
        assert!(w[0].is_nan());
        assert!((w[1] - 1.0).abs() < 3e-7 && (w[2] + 1.0).abs() < 3e-7, "{w:?}");
        assert_eq!(w[3], 0.0);
        assert!((w[4] / 1e-30 - 1.0).abs() < 3e-7 && (w[5] / -1e-30 - 1.0).abs() < 3e-7, "{w:?}");
    }

    /// The bias joins per row, on rows whose width is not a multiple of the lanes (masked
    /// tails), and equals the scalar `tanh_fast(v + b)` to the functions' accuracy.
    #[test]
    fn bias_is_added_per_row() {
        let (rows, width) = (5, 21);
        let v0: Vec<f64> = (0..rows * width).map(|i| ((i * 37 % 101) as f64 / 101.0 - 0.5) * 6.0).collect();
        let bias: Vec<f64> = (0..width).map(|j| (j as f64 - 10.0) * 0.07).collect();
        let mut v = v0.clone();
        bias_tanh_rows(&mut v, &bias);
        let mut w: Vec<f32> = v0.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = bias.iter().map(|&b| b as f32).collect();
        bias_tanh_rows(&mut w, &b32);
        for (i, (&got, &x)) in v.iter().zip(&v0).enumerate() {
            let want = (x + bias[i % width]).tanh();
            assert!((got - want).abs() < 4e-16, "row {} col {}: {got} vs {want}", i / width, i % width);
            let want32 = ((x as f32 + b32[i % width]) as f64).tanh();
            assert!((w[i] as f64 - want32).abs() < 5e-7 * want32.abs().max(1e-30), "f32 {i}: {} vs {want32}", w[i]);
        }
    }
}
