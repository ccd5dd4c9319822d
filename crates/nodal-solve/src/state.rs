//! The state abstraction: what the integration loop and the gradient engine need of a `y`.
//!
//! The engine is written once against [`State`]. Plain vectors (`Vec<f32>`, `Vec<f64>`) implement
//! it with fused loops; the burn crate implements it for tensors; pairs and triples of states
//! implement it componentwise, which is how augmented systems (the continuous adjoint's
//! `[y, a, a_theta]`, regularisers carried along a solve) are built without copying.

use crate::scalar::Scalar;

/// A vector-space element the solvers can integrate.
///
/// All coefficient arguments are `f64`; implementations convert to their element type.
pub trait State: Clone + Send {
    /// Number of scalar entries.
    fn len(&self) -> usize;
    /// Whether the state has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes the entries take (what memory limits count; 8 per entry unless the type knows
    /// better).
    fn size_bytes(&self) -> usize {
        self.len().saturating_mul(8)
    }
    /// A state of the same shape filled with zeros.
    fn zeros_like(&self) -> Self;
    /// Overwrite `self` with `other` (same shape), without reallocating.
    fn assign(&mut self, other: &Self);
    /// `self <- base + h * sum_j coeffs[j] * ks[j]`, skipping zero coefficients.
    /// `coeffs.len() <= ks.len()`.
    fn set_lincomb(&mut self, base: &Self, h: f64, coeffs: &[f64], ks: &[Self]);
    /// `self <- self + alpha * x`.
    fn axpy(&mut self, alpha: f64, x: &Self);
    /// `self <- alpha * self`.
    fn scale(&mut self, alpha: f64);
    /// Sum of squares of `err_i / (atol + rtol * max(|y0_i|, |y1_i|))`, and the number of
    /// terms. The RMS error norm of torchdiffeq and diffrax is `sqrt(sum / count)`.
    fn weighted_sq_sum(err: &Self, y0: &Self, y1: &Self, rtol: f64, atol: f64) -> (f64, usize);
    /// Whether every entry is finite.
    fn all_finite(&self) -> bool;
    /// Euclidean inner product.
    fn dot(&self, other: &Self) -> f64;
    /// Copy the entries, in order, into `out` (of length [`State::len`]) as `f64`. Implicit
    /// steppers do their Newton and linear-algebra work on these host copies.
    fn write_f64(&self, out: &mut [f64]);
    /// Overwrite the entries, in the order of [`State::write_f64`], from `src` (of length
    /// [`State::len`]).
    fn read_f64(&mut self, src: &[f64]);
}

impl<T: Scalar> State for Vec<T> {
    #[inline]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn size_bytes(&self) -> usize {
        Vec::len(self).saturating_mul(std::mem::size_of::<T>())
    }
    fn zeros_like(&self) -> Self {
        vec![T::ZERO; Vec::len(self)]
    }
    #[inline]
    fn assign(&mut self, other: &Self) {
        self.copy_from_slice(other);
    }
    fn set_lincomb(&mut self, base: &Self, h: f64, coeffs: &[f64], ks: &[Self]) {
        // Block by block, so that a block of the output stays in the L1 cache while every stage
        // is added to it: one pass over memory instead of one per stage, with the same
        // operations in the same order (so the same result). Tableaus have at most
        // `MAX_STAGES` stages; a longer combination takes one pass per term.
        const BLOCK: usize = 2048;
        const MAX_TERMS: usize = crate::tableau::MAX_STAGES;
        let mut terms = [(T::ZERO, 0usize); MAX_TERMS];
        let mut n = 0;
        for (j, c) in coeffs.iter().enumerate().take(ks.len()) {
            if *c != 0.0 {
                if n == MAX_TERMS {
                    self.copy_from_slice(base);
                    for (c, k) in coeffs.iter().zip(ks).filter(|(c, _)| **c != 0.0) {
                        self.axpy(h * c, k);
                    }
                    return;
                }
                terms[n] = (T::from_f64(h * c), j);
                n += 1;
            }
        }
        for (b, out) in self.chunks_mut(BLOCK).enumerate() {
            let (lo, hi) = (b * BLOCK, b * BLOCK + out.len());
            out.copy_from_slice(&base[lo..hi]);
            for &(w, j) in &terms[..n] {
                for (o, x) in out.iter_mut().zip(&ks[j][lo..hi]) {
                    *o += w * *x;
                }
            }
        }
    }
    #[inline]
    fn axpy(&mut self, alpha: f64, x: &Self) {
        let w = T::from_f64(alpha);
        for (o, v) in self.iter_mut().zip(x.iter()) {
            *o += w * *v;
        }
    }
    fn scale(&mut self, alpha: f64) {
        let w = T::from_f64(alpha);
        for o in self.iter_mut() {
            *o *= w;
        }
    }
    fn weighted_sq_sum(err: &Self, y0: &Self, y1: &Self, rtol: f64, atol: f64) -> (f64, usize) {
        // Eight independent partial sums (one per lane, added in a fixed order at the end), so
        // the loop vectorises instead of waiting on one chain of additions.
        let term = |e: T, a: T, b: T| {
            let sc = atol + rtol * a.abs().to_f64().max(b.abs().to_f64());
            let r = e.to_f64() / sc;
            r * r
        };
        let n = err.len().min(y0.len()).min(y1.len());
        let mut acc = [0.0f64; 8];
        let (ec, ac, bc) = (err[..n].chunks_exact(8), y0[..n].chunks_exact(8), y1[..n].chunks_exact(8));
        let (er, ar, br) = (ec.remainder(), ac.remainder(), bc.remainder());
        for ((e, a), b) in ec.zip(ac).zip(bc) {
            for l in 0..8 {
                acc[l] += term(e[l], a[l], b[l]);
            }
        }
        let mut s = acc.iter().sum::<f64>();
        for ((e, a), b) in er.iter().zip(ar).zip(br) {
            s += term(*e, *a, *b);
        }
        (s, err.len())
    }
    fn all_finite(&self) -> bool {
        // Sum trick: finite iff the sum of x*0 is zero (NaN/inf propagate); vectorises.
        let mut acc = T::ZERO;
        for x in self.iter() {
            acc += *x * T::ZERO;
        }
        acc == T::ZERO
    }
    fn dot(&self, other: &Self) -> f64 {
        self.iter().zip(other.iter()).map(|(a, b)| a.to_f64() * b.to_f64()).sum()
    }
    fn write_f64(&self, out: &mut [f64]) {
        for (o, x) in out.iter_mut().zip(self.iter()) {
            *o = x.to_f64();
        }
    }
    fn read_f64(&mut self, src: &[f64]) {
        for (o, x) in self.iter_mut().zip(src) {
            *o = T::from_f64(*x);
        }
    }
}

/// Componentwise state of two parts, e.g. `(y, a)`; the error norm is taken over both.
impl<A: State, B: State> State for (A, B) {
    fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }
    fn zeros_like(&self) -> Self {
        (self.0.zeros_like(), self.1.zeros_like())
    }
    fn assign(&mut self, other: &Self) {
        self.0.assign(&other.0);
        self.1.assign(&other.1);
    }
    fn set_lincomb(&mut self, base: &Self, h: f64, coeffs: &[f64], ks: &[Self]) {
        // Split the stage slice into component views without allocating: lincomb per part.
        lincomb_part(&mut self.0, &base.0, h, coeffs, ks, |k| &k.0);
        lincomb_part(&mut self.1, &base.1, h, coeffs, ks, |k| &k.1);
    }
    fn axpy(&mut self, alpha: f64, x: &Self) {
        self.0.axpy(alpha, &x.0);
        self.1.axpy(alpha, &x.1);
    }
    fn scale(&mut self, alpha: f64) {
        self.0.scale(alpha);
        self.1.scale(alpha);
    }
    fn weighted_sq_sum(err: &Self, y0: &Self, y1: &Self, rtol: f64, atol: f64) -> (f64, usize) {
        let (s0, n0) = A::weighted_sq_sum(&err.0, &y0.0, &y1.0, rtol, atol);
        let (s1, n1) = B::weighted_sq_sum(&err.1, &y0.1, &y1.1, rtol, atol);
        (s0 + s1, n0 + n1)
    }
    fn all_finite(&self) -> bool {
        self.0.all_finite() && self.1.all_finite()
    }
    fn write_f64(&self, out: &mut [f64]) {
        let (a, b) = out.split_at_mut(self.0.len());
        self.0.write_f64(a);
        self.1.write_f64(b);
    }
    fn read_f64(&mut self, src: &[f64]) {
        let (a, b) = src.split_at(self.0.len());
        self.0.read_f64(a);
        self.1.read_f64(b);
    }
    fn dot(&self, other: &Self) -> f64 {
        self.0.dot(&other.0) + self.1.dot(&other.1)
    }
}

/// `out <- base + h * sum_j coeffs[j] * part(ks[j])` through repeated `axpy`, for composite states.
fn lincomb_part<P: State, K>(out: &mut P, base: &P, h: f64, coeffs: &[f64], ks: &[K], part: impl Fn(&K) -> &P) {
    out.assign(base);
    for (c, k) in coeffs.iter().zip(ks) {
        if *c != 0.0 {
            out.axpy(h * c, part(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lincomb_matches_by_hand() {
        let base = vec![1.0f64, 2.0];
        let ks = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![5.0, 5.0]];
        let mut out = base.zeros_like();
        out.set_lincomb(&base, 0.5, &[2.0, 4.0], &ks);
        assert_eq!(out, vec![2.0, 4.0]);
    }

    /// The blocked combination equals the pass-per-stage one bit for bit, across block edges
    /// and with more terms than a tableau has.
    #[test]
    fn blocked_lincomb_equals_one_pass_per_stage() {
        let len = 5000;
        let base: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
        for stages in [1, 7, 30] {
            let ks: Vec<Vec<f32>> = (0..stages).map(|s| (0..len).map(|i| ((i * (s + 3)) as f32 * 0.11).cos()).collect()).collect();
            let coeffs: Vec<f64> = (0..stages).map(|s| if s % 3 == 1 { 0.0 } else { 0.1 + s as f64 / 7.0 }).collect();
            let mut want = base.clone();
            for (c, k) in coeffs.iter().zip(&ks) {
                if *c != 0.0 {
                    let w = (0.3 * c) as f32;
                    want.iter_mut().zip(k).for_each(|(o, x)| *o += w * *x);
                }
            }
            let mut got = base.zeros_like();
            got.set_lincomb(&base, 0.3, &coeffs, &ks);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{stages} stages");
        }
    }

    #[test]
    fn finite_check_sees_nan_and_inf() {
        assert!(vec![1.0f32, 2.0].all_finite());
        assert!(!vec![1.0f32, f32::NAN].all_finite());
        assert!(!vec![f64::INFINITY, 0.0].all_finite());
    }

    #[test]
    fn pair_norm_counts_both_parts() {
        let e = (vec![1.0f64], vec![1.0f64, 1.0]);
        let (s, n) = <(Vec<f64>, Vec<f64>)>::weighted_sq_sum(&e, &e.zeros_like(), &e.zeros_like(), 0.0, 1.0);
        assert_eq!((s, n), (3.0, 3));
    }
}
