//! The floating-point element types a vector state may hold (`f32`, `f64`).

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real floating-point element: `f32` or `f64`.
///
/// Times and step sizes are always `f64`; states may be stored in either precision.
pub trait Scalar:
    Copy
    + Debug
    + Default
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + crate::thin_gemm::ThinElement
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Name used in problem files (`"float32"`, `"float64"`).
    const DTYPE: &'static str;
    /// Conversion from `f64` (rounding for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Conversion to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Hyperbolic tangent, vectorisable (see [`crate::fastmath`]).
    fn tanh_fast(self) -> Self;
    /// Single-precision general matrix product `C = alpha A B + beta C` on row-major slices
    /// with explicit strides (dispatches to `matrixmultiply`).
    ///
    /// # Safety
    /// Pointers and strides must describe valid, non-overlapping (for C) matrices.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
    /// `C = A B` (or `C += A B`) on contiguous row-major matrices (`A` `m x k`, `B` `k x n`)
    /// through the unpacked kernels of [`crate::thin_gemm`]; `false` (nothing touched) where
    /// they do not apply, so the caller uses [`Scalar::gemm`].
    #[allow(clippy::too_many_arguments)]
    fn thin_nn(a: &[Self], b: &[Self], c: &mut [Self], m: usize, k: usize, n: usize, accumulate: bool) -> bool {
        crate::thin_gemm::nn(a, b, c, m, k, n, accumulate)
    }
    /// [`Scalar::thin_nn`] with the bias and `tanh` epilogue of [`crate::thin_gemm::nn_then`].
    #[allow(clippy::too_many_arguments)]
    fn thin_nn_then(a: &[Self], b: &[Self], c: &mut [Self], m: usize, k: usize, n: usize, bias: Option<&[Self]>, tanh: bool) -> bool {
        crate::thin_gemm::nn_then(a, b, c, m, k, n, false, bias, tanh)
    }
    /// `C = A Bᵀ` for a narrow `C` (`A` `m x k`, `B` `n x k`) through
    /// [`crate::thin_gemm::nt_narrow`]; `false` where it does not apply.
    fn thin_nt_narrow(a: &[Self], b: &[Self], c: &mut [Self], m: usize, k: usize, n: usize) -> bool {
        crate::thin_gemm::nt_narrow(a, b, c, m, k, n)
    }
    /// `v <- tanh(v + b)` elementwise (`tanh(v)` without a bias; `bias` as long as `v`) on the
    /// AVX-512 kernels of [`crate::vector_tanh`]; `false`, touching nothing, where they cannot
    /// run (the caller then uses [`Scalar::tanh_fast`]).
    fn tanh_simd(v: &mut [Self], bias: Option<&[Self]>) -> bool;
    /// The fused forward of a narrow MLP (`dim <= 4`), `out = W2 tanh(W1 y + b1) + b2` row by
    /// row, through [`crate::mlp_narrow`]; `false`, touching nothing, where it cannot run.
    #[allow(clippy::too_many_arguments)]
    fn narrow_mlp_forward(
        y: &[Self],
        w1t: &[Self],
        b1: &[Self],
        w2: &[Self],
        b2: &[Self],
        out: &mut [Self],
        dim: usize,
        hidden: usize,
    ) -> bool;
    /// `C += Aᵀ B` (`A` `m x p`, `B` `m x q`, `C` `p x q`, contiguous row-major) through
    /// [`crate::thin_gemm`]; `false` where it does not apply.
    fn thin_tn_accumulate(a: &[Self], b: &[Self], c: &mut [Self], m: usize, p: usize, q: usize) -> bool {
        crate::thin_gemm::tn_accumulate(a, b, c, m, p, q)
    }
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const DTYPE: &'static str = "float32";
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn tanh_fast(self) -> Self {
        crate::fastmath::tanh_f32(self)
    }
    fn tanh_simd(v: &mut [Self], bias: Option<&[Self]>) -> bool {
        crate::vector_tanh::tanh_f32_slice(v, bias)
    }
    fn narrow_mlp_forward(
        y: &[Self],
        w1t: &[Self],
        b1: &[Self],
        w2: &[Self],
        b2: &[Self],
        out: &mut [Self],
        dim: usize,
        hidden: usize,
    ) -> bool {
        crate::mlp_narrow::forward_f32(y, w1t, b1, w2, b2, out, dim, hidden)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const DTYPE: &'static str = "float64";
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn tanh_fast(self) -> Self {
        crate::fastmath::tanh_f64(self)
    }
    fn tanh_simd(v: &mut [Self], bias: Option<&[Self]>) -> bool {
        crate::vector_tanh::tanh_f64_slice(v, bias)
    }
    fn narrow_mlp_forward(
        y: &[Self],
        w1t: &[Self],
        b1: &[Self],
        w2: &[Self],
        b2: &[Self],
        out: &mut [Self],
        dim: usize,
        hidden: usize,
    ) -> bool {
        crate::mlp_narrow::forward_f64(y, w1t, b1, w2, b2, out, dim, hidden)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        unsafe { matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}
