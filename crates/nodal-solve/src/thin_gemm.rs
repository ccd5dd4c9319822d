//! Matrix products (f32 and f64) for the thin shapes of small-network dynamics (many rows,
//! a few dozen columns), with no packing.
//!
//! A general GEMM (matrixmultiply) copies both operands into panels before multiplying. For a
//! `1536 x 64` by `64 x 64` product that copy costs about half as much as the arithmetic: in the
//! fused CNF network it took 24% of a training step against 50% for the multiply-adds. Here the
//! right-hand operand's rows (at most four AVX-512 registers per row and column block: 64 f32
//! or 32 f64) are read in place, and a block of `R = 6` left-hand rows accumulates in `R x 4`
//! registers. With `L` lanes (16 for f32, 8 for f64):
//!
//! ```text
//! nn:  C[i, :] (+)= Σ_k A[i, k] B[k, :]        C = A B,   B row-major k x n, n % L == 0
//! tn:  C[j, :]  += Σ_i A[i, j] B[i, :]         C += Aᵀ B, A row-major m x p, B m x q, q % L == 0
//! nt:  C[i, j]   = A[i, :] · B[j, :]           C = A Bᵀ,  k % L == 0, n <= 8 (narrow outputs)
//! ```
//!
//! All use AVX-512F when the CPU has it (checked at run time) and otherwise report that they did
//! nothing, so the caller falls back to a general GEMM. Sums run in a fixed order, so results are
//! deterministic (they differ from a packed GEMM's by rounding only).

/// The element types the kernels exist for (`f32`, 16 lanes; `f64`, 8 lanes). Sealed: the
/// methods are the raw kernels, called only after the checks of the public functions.
pub trait ThinElement: Copy + private::Sealed {
    /// Lanes per AVX-512 register.
    const LANES: usize;
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_nn(
        a: *const Self,
        b: *const Self,
        c: *mut Self,
        m: usize,
        k: usize,
        n: usize,
        accumulate: bool,
        bias: *const Self,
        tanh: bool,
    );
    #[doc(hidden)]
    unsafe fn raw_tn(a: *const Self, b: *const Self, c: *mut Self, m: usize, p: usize, q: usize);
    #[doc(hidden)]
    unsafe fn raw_nt(a: *const Self, b: *const Self, c: *mut Self, m: usize, k: usize, n: usize);
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

macro_rules! thin_element {
    ($t:ty, $lanes:expr, $module:ident) => {
        impl ThinElement for $t {
            const LANES: usize = $lanes;
            unsafe fn raw_nn(
                a: *const Self,
                b: *const Self,
                c: *mut Self,
                m: usize,
                k: usize,
                n: usize,
                accumulate: bool,
                bias: *const Self,
                tanh: bool,
            ) {
                // SAFETY: the caller checked the CPU and the slice lengths.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    x86::$module::nn(a, b, c, m, k, n, x86::$module::Epilogue { acc: accumulate, bias, tanh })
                }
            }
            unsafe fn raw_tn(a: *const Self, b: *const Self, c: *mut Self, m: usize, p: usize, q: usize) {
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    x86::$module::tn(a, b, c, m, p, q)
                }
            }
            unsafe fn raw_nt(a: *const Self, b: *const Self, c: *mut Self, m: usize, k: usize, n: usize) {
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    x86::$module::nt(a, b, c, m, k, n)
                }
            }
        }
    };
}
thin_element!(f32, 16, f32k);
thin_element!(f64, 8, f64k);

/// `C = A B` (or `C += A B` with `accumulate`) for row-major `A` (`m x k`, row stride `k`), `B`
/// (`k x n`, row stride `n`) and `C` (`m x n`, row stride `n`). Returns `false`, touching
/// nothing, when the shape or the CPU does not suit the kernel (`n % LANES != 0`, or no
/// AVX-512F).
pub fn nn<T: ThinElement>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize, accumulate: bool) -> bool {
    nn_then(a, b, c, m, k, n, accumulate, None, false)
}

/// [`nn`] with an epilogue applied in registers before each store: `C[i, :] = g(C[i, :] (+)
/// bias)`, where `bias` (length `n`) is added to every row when given and `g` is `tanh` (the
/// kernel of [`crate::vector_tanh`]) when `tanh` is set, else the identity. A layer
/// `tanh(x Wᵀ + b)` then takes one pass over its output instead of three. The sum is rounded
/// as `Σ + b` either way, so the result equals `nn` followed by the bias and `tanh` passes.
#[allow(clippy::too_many_arguments)]
pub fn nn_then<T: ThinElement>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
    bias: Option<&[T]>,
    tanh: bool,
) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    if n % T::LANES != 0 || !avx512() {
        return false;
    }
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "thin_gemm::nn: slices shorter than the shape");
    assert!(bias.is_none_or(|b| b.len() >= n), "thin_gemm::nn_then: bias shorter than a row");
    let bias = bias.map_or(std::ptr::null(), |b| b.as_ptr());
    // SAFETY: AVX-512F is present (checked above); the asserted lengths cover every access.
    unsafe { T::raw_nn(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), m, k, n, accumulate, bias, tanh) };
    true
}

/// `C += Aᵀ B` for row-major `A` (`m x p`), `B` (`m x q`) and `C` (`p x q`), all with row stride
/// equal to their width. Returns `false`, touching nothing, when `q % LANES != 0` or the CPU
/// lacks AVX-512F.
pub fn tn_accumulate<T: ThinElement>(a: &[T], b: &[T], c: &mut [T], m: usize, p: usize, q: usize) -> bool {
    if m == 0 || p == 0 || q == 0 {
        return true;
    }
    if q % T::LANES != 0 || !avx512() {
        return false;
    }
    assert!(a.len() >= m * p && b.len() >= m * q && c.len() >= p * q, "thin_gemm::tn_accumulate: slices shorter than the shape");
    // SAFETY: AVX-512F is present (checked above); the asserted lengths cover every access.
    unsafe { T::raw_tn(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), m, p, q) };
    true
}

/// `C = A Bᵀ` for row-major `A` (`m x k`), `B` (`n x k`) and `C` (`m x n`): a few dot products
/// per row, for outputs too narrow for [`nn`] (a flow's last layer, `n = d`). Returns `false`,
/// touching nothing, unless `k % LANES == 0`, `n <= 8` and the CPU has AVX-512F.
pub fn nt_narrow<T: ThinElement>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    if k % T::LANES != 0 || n > 8 || !avx512() {
        return false;
    }
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n, "thin_gemm::nt_narrow: slices shorter than the shape");
    // SAFETY: AVX-512F is present (checked above); the asserted lengths cover every access.
    unsafe { T::raw_nt(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), m, k, n) };
    true
}

/// Whether the AVX-512F kernels can run here (`NODAL_THIN_GEMM=0` turns them off, for
/// comparisons).
pub(crate) fn avx512() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        if std::env::var("NODAL_THIN_GEMM").is_ok_and(|v| v == "0") {
            return false;
        }
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

/// The AVX-512F kernels, one module per precision (the same code over `__m512` with 16 lanes
/// and `__m512d` with 8).
#[cfg(target_arch = "x86_64")]
macro_rules! avx512_kernels {
    ($name:ident, $t:ty, $lanes:expr, $zero:ident, $load:ident, $store:ident, $set1:ident, $fmadd:ident, $add:ident, $reduce:ident, $tanh:path) => {
        pub(super) mod $name {
            use std::arch::x86_64::*;

            /// What `nn` does to each register of sums before storing it: `C +` (when `acc`),
            /// `+ bias` (when not null), then `tanh` (when set).
            #[derive(Clone, Copy)]
            pub(crate) struct Epilogue {
                pub(crate) acc: bool,
                pub(crate) bias: *const $t,
                pub(crate) tanh: bool,
            }

            impl Epilogue {
                /// The same epilogue for the columns from `j0` on.
                #[inline(always)]
                fn shifted(self, j0: usize) -> Self {
                    Self { bias: if self.bias.is_null() { self.bias } else { self.bias.wrapping_add(j0) }, ..self }
                }
            }
            /// Rows of the left operand per register block.
            const R: usize = 6;
            /// Lanes per register.
            const L: usize = $lanes;

            /// Column blocks of at most four registers; `n % L == 0`.
            #[target_feature(enable = "avx512f")]
            pub(crate) unsafe fn nn(a: *const $t, b: *const $t, c: *mut $t, m: usize, k: usize, n: usize, epi: Epilogue) {
                let mut j0 = 0;
                while j0 < n {
                    let nv = ((n - j0) / L).min(4);
                    let acc = epi.shifted(j0);
                    unsafe {
                        match nv {
                            4 => nn_cols::<4>(a, b.add(j0), c.add(j0), m, k, n, acc),
                            3 => nn_cols::<3>(a, b.add(j0), c.add(j0), m, k, n, acc),
                            2 => nn_cols::<2>(a, b.add(j0), c.add(j0), m, k, n, acc),
                            _ => nn_cols::<1>(a, b.add(j0), c.add(j0), m, k, n, acc),
                        }
                    }
                    j0 += L * nv;
                }
            }

            /// `NV * L` columns of `C`, every row, in blocks of `R` rows.
            #[target_feature(enable = "avx512f")]
            unsafe fn nn_cols<const NV: usize>(a: *const $t, b: *const $t, c: *mut $t, m: usize, k: usize, ldn: usize, acc: Epilogue) {
                let mut i = 0;
                unsafe {
                    while i + R <= m {
                        nn_block::<NV, R>(a.add(i * k), b, c.add(i * ldn), k, ldn, acc);
                        i += R;
                    }
                    let (a, c) = (a.add(i * k), c.add(i * ldn));
                    match m - i {
                        5 => nn_block::<NV, 5>(a, b, c, k, ldn, acc),
                        4 => nn_block::<NV, 4>(a, b, c, k, ldn, acc),
                        3 => nn_block::<NV, 3>(a, b, c, k, ldn, acc),
                        2 => nn_block::<NV, 2>(a, b, c, k, ldn, acc),
                        1 => nn_block::<NV, 1>(a, b, c, k, ldn, acc),
                        _ => {}
                    }
                }
            }

            /// `RR` rows by `NV` registers of columns: `C[r, :] (+)= Σ_k A[r, k] B[k, :]`.
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn nn_block<const NV: usize, const RR: usize>(
                a: *const $t,
                b: *const $t,
                c: *mut $t,
                k: usize,
                ldn: usize,
                epi: Epilogue,
            ) {
                let mut s = [[$zero(); NV]; RR];
                unsafe {
                    for kk in 0..k {
                        let brow = b.add(kk * ldn);
                        let mut bv = [$zero(); NV];
                        for (v, x) in bv.iter_mut().enumerate() {
                            *x = $load(brow.add(L * v));
                        }
                        for (r, sr) in s.iter_mut().enumerate() {
                            let x = $set1(*a.add(r * k + kk));
                            for (v, sv) in sr.iter_mut().enumerate() {
                                *sv = $fmadd(x, bv[v], *sv);
                            }
                        }
                    }
                    for (r, sr) in s.iter().enumerate() {
                        for (v, sv) in sr.iter().enumerate() {
                            let p = c.add(r * ldn + L * v);
                            let mut out = if epi.acc { $add($load(p), *sv) } else { *sv };
                            if !epi.bias.is_null() {
                                out = $add(out, $load(epi.bias.add(L * v)));
                            }
                            if epi.tanh {
                                out = $tanh(out);
                            }
                            $store(p, out);
                        }
                    }
                }
            }

            /// `C[i, j] = A[i, :] · B[j, :]`, one register of partial sums per output, then a
            /// horizontal sum.
            #[target_feature(enable = "avx512f")]
            pub(crate) unsafe fn nt(a: *const $t, b: *const $t, c: *mut $t, m: usize, k: usize, n: usize) {
                unsafe {
                    for i in 0..m {
                        let arow = a.add(i * k);
                        for j in 0..n {
                            let brow = b.add(j * k);
                            let mut s = $zero();
                            for v in 0..k / L {
                                s = $fmadd($load(arow.add(L * v)), $load(brow.add(L * v)), s);
                            }
                            *c.add(i * n + j) = $reduce(s);
                        }
                    }
                }
            }

            /// `C (p x q) += Aᵀ B`: column blocks of at most four registers, rows of `C` in blocks of `R`.
            #[target_feature(enable = "avx512f")]
            pub(crate) unsafe fn tn(a: *const $t, b: *const $t, c: *mut $t, m: usize, p: usize, q: usize) {
                let mut j0 = 0;
                while j0 < q {
                    let nv = ((q - j0) / L).min(4);
                    unsafe {
                        match nv {
                            4 => tn_cols::<4>(a, b.add(j0), c.add(j0), m, p, q),
                            3 => tn_cols::<3>(a, b.add(j0), c.add(j0), m, p, q),
                            2 => tn_cols::<2>(a, b.add(j0), c.add(j0), m, p, q),
                            _ => tn_cols::<1>(a, b.add(j0), c.add(j0), m, p, q),
                        }
                    }
                    j0 += L * nv;
                }
            }

            #[target_feature(enable = "avx512f")]
            unsafe fn tn_cols<const NV: usize>(a: *const $t, b: *const $t, c: *mut $t, m: usize, p: usize, q: usize) {
                let mut j = 0;
                unsafe {
                    while j + R <= p {
                        tn_block::<NV, R>(a.add(j), b, c.add(j * q), m, p, q);
                        j += R;
                    }
                    let (a, c) = (a.add(j), c.add(j * q));
                    match p - j {
                        5 => tn_block::<NV, 5>(a, b, c, m, p, q),
                        4 => tn_block::<NV, 4>(a, b, c, m, p, q),
                        3 => tn_block::<NV, 3>(a, b, c, m, p, q),
                        2 => tn_block::<NV, 2>(a, b, c, m, p, q),
                        1 => tn_block::<NV, 1>(a, b, c, m, p, q),
                        _ => {}
                    }
                }
            }

            /// `RR` rows of `C` by `NV` registers of columns: `C[r, :] += Σ_i A[i, r] B[i, :]`, where
            /// `a` points at column `r = 0` of `A` (row stride `p`) and `b` at `B`'s first column in the
            /// block (row stride `q`).
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn tn_block<const NV: usize, const RR: usize>(a: *const $t, b: *const $t, c: *mut $t, m: usize, p: usize, q: usize) {
                let mut s = [[$zero(); NV]; RR];
                unsafe {
                    for i in 0..m {
                        let brow = b.add(i * q);
                        let mut bv = [$zero(); NV];
                        for (v, x) in bv.iter_mut().enumerate() {
                            *x = $load(brow.add(L * v));
                        }
                        let arow = a.add(i * p);
                        for (r, sr) in s.iter_mut().enumerate() {
                            let x = $set1(*arow.add(r));
                            for (v, sv) in sr.iter_mut().enumerate() {
                                *sv = $fmadd(x, bv[v], *sv);
                            }
                        }
                    }
                    for (r, sr) in s.iter().enumerate() {
                        for (v, sv) in sr.iter().enumerate() {
                            let ptr = c.add(r * q + L * v);
                            $store(ptr, $add($load(ptr), *sv));
                        }
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    avx512_kernels!(
        f32k,
        f32,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_reduce_add_ps,
        crate::vector_tanh::x86::tanh16
    );
    avx512_kernels!(
        f64k,
        f64,
        8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_reduce_add_pd,
        crate::vector_tanh::x86::tanh8
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain triple loops in f64, the reference.
    fn reference_nn(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64).sum();
            }
        }
        c
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 2003.0 - 0.5) * 2.0).collect()
    }

    /// Largest entry-wise error relative to `sum_k |a||b|` (the scale of f32 rounding in a
    /// length-`k` sum: about `k * 2^-24` at worst).
    fn close(got: &[f32], want: &[f64], k: usize) {
        let tol = 2.0 * k as f64 * f32::EPSILON as f64;
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= tol * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn nn_matches_triple_loops_on_every_block_shape() {
        if !avx512() {
            eprintln!("skipped: no AVX-512F on this CPU (the callers fall back to a general GEMM)");
            return;
        }
        // Rows cover full blocks and every remainder; columns one to five registers.
        for &(m, k, n) in &[(13, 3, 64), (6, 64, 64), (1, 7, 16), (17, 64, 48), (11, 5, 80), (5, 2, 32)] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = reference_nn(&a, &b, m, k, n);
            let mut c = vec![f32::NAN; m * n];
            assert!(nn(&a, &b, &mut c, m, k, n, false));
            close(&c, &want, k);
            // Accumulating adds onto what is there.
            let mut c2 = vec![1.0f32; m * n];
            assert!(nn(&a, &b, &mut c2, m, k, n, true));
            let want2: Vec<f64> = want.iter().map(|w| w + 1.0).collect();
            close(&c2, &want2, k);
        }
    }

    #[test]
    fn tn_matches_triple_loops_on_every_block_shape() {
        if !avx512() {
            eprintln!("skipped: no AVX-512F on this CPU (the callers fall back to a general GEMM)");
            return;
        }
        for &(m, p, q) in &[(100, 64, 64), (9, 2, 64), (31, 13, 48), (4, 7, 80)] {
            let (a, b) = (values(m * p, 3), values(m * q, 4));
            // Aᵀ B through the reference with Aᵀ written out.
            let at: Vec<f32> = (0..p * m).map(|x| a[(x % m) * p + x / m]).collect();
            let want: Vec<f64> = reference_nn(&at, &b, p, m, q).iter().map(|w| w + 0.5).collect();
            let mut c = vec![0.5f32; p * q];
            assert!(tn_accumulate(&a, &b, &mut c, m, p, q));
            close(&c, &want, m);
        }
    }

    #[test]
    fn nt_narrow_matches_triple_loops() {
        if !avx512() {
            eprintln!("skipped: no AVX-512F on this CPU (the callers fall back to a general GEMM)");
            return;
        }
        for &(m, k, n) in &[(37, 64, 2), (5, 16, 3), (3, 128, 8)] {
            let (a, b) = (values(m * k, 5), values(n * k, 6));
            let bt: Vec<f32> = (0..k * n).map(|x| b[(x % n) * k + x / n]).collect();
            let want = reference_nn(&a, &bt, m, k, n);
            let mut c = vec![f32::NAN; m * n];
            assert!(nt_narrow(&a, &b, &mut c, m, k, n));
            close(&c, &want, k);
        }
    }

    #[test]
    fn double_precision_kernels_match_triple_loops() {
        if !avx512() {
            eprintln!("skipped: no AVX-512F on this CPU (the callers fall back to a general GEMM)");
            return;
        }
        let v64 = |len: usize, seed: usize| -> Vec<f64> { values(len, seed).iter().map(|&v| v as f64 + 1e-3 * (seed as f64)).collect() };
        let naive = |a: &[f64], b: &[f64], m: usize, k: usize, n: usize| -> Vec<f64> {
            (0..m * n).map(|e| (0..k).map(|kk| a[(e / n) * k + kk] * b[kk * n + e % n]).sum()).collect()
        };
        // f64 sums of up to 100 products: 1e-13 relative to the terms' scale is a few ulp each.
        let close64 = |got: &[f64], want: &[f64]| {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 1e-13 * (1.0 + w.abs()), "{g} vs {w}");
            }
        };
        for &(m, k, n) in &[(13, 3, 64), (7, 8, 8), (17, 64, 40), (5, 5, 72)] {
            let (a, b) = (v64(m * k, 1), v64(k * n, 2));
            let mut c = vec![f64::NAN; m * n];
            assert!(nn(&a, &b, &mut c, m, k, n, false));
            close64(&c, &naive(&a, &b, m, k, n));
        }
        for &(m, p, q) in &[(100, 64, 64), (9, 3, 16), (31, 13, 24)] {
            let (a, b) = (v64(m * p, 3), v64(m * q, 4));
            let at: Vec<f64> = (0..p * m).map(|x| a[(x % m) * p + x / m]).collect();
            let want: Vec<f64> = naive(&at, &b, p, m, q).iter().map(|w| w + 0.5).collect();
            let mut c = vec![0.5; p * q];
            assert!(tn_accumulate(&a, &b, &mut c, m, p, q));
            close64(&c, &want);
        }
        for &(m, k, n) in &[(37, 64, 2), (5, 8, 3)] {
            let (a, b) = (v64(m * k, 5), v64(n * k, 6));
            let bt: Vec<f64> = (0..k * n).map(|x| b[(x % n) * k + x / n]).collect();
            let mut c = vec![f64::NAN; m * n];
            assert!(nt_narrow(&a, &b, &mut c, m, k, n));
            close64(&c, &naive(&a, &bt, m, k, n));
        }
    }

    #[test]
    fn shapes_the_kernels_do_not_cover_are_left_to_the_caller() {
        let mut c = vec![7.0f32; 6];
        assert!(!nn(&[1.0; 6], &[1.0; 9], &mut c, 2, 3, 3, false));
        assert!(!tn_accumulate(&[1.0; 6], &[1.0; 9], &mut c, 3, 2, 3));
        assert!(!nt_narrow(&[1.0; 6], &[1.0; 6], &mut c, 2, 3, 2));
        assert_eq!(c, vec![7.0; 6]);
    }
}
