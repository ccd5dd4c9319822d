//! Type-II Anderson acceleration (Anderson 1965, "Iterative procedures for nonlinear integral
//! equations"; Walker and Ni 2011, "Anderson acceleration for fixed-point iterations").
//!
//! With the last `n <= m` iterates `z_i`, images `f_i = f(z_i)` and residuals
//! `g_i = f_i - z_i`, the weights `alpha` minimise `|sum alpha_i g_i|` subject to
//! `sum alpha_i = 1`: `alpha = w / sum(w)` with `(G G^T + lambda I) w = 1`, `lambda` relative
//! to the Gram matrix's largest diagonal entry. The next iterate is
//! `sum alpha_i ((1 - beta) z_i + beta f_i)`. On an affine map with unlimited memory this is
//! GMRES in disguise; with `m = 1` it is Picard. The Gram matrix is updated by one new row and
//! column per step (`O(m dim)` work per step, not `O(m^2 dim)`).

use super::small_solve::solve_dense;
use super::{RowUpdate, dot};
use crate::Scalar;

/// One row's Anderson history.
#[derive(Debug, Clone)]
pub struct AndersonRow<T> {
    dim: usize,
    memory: usize,
    damping: f64,
    regularisation: f64,
    /// Iterates, `memory` slots of `dim`.
    zs: Vec<T>,
    /// Images, likewise.
    fs: Vec<T>,
    /// Residuals `f - z`, likewise.
    gs: Vec<T>,
    /// Gram matrix of the residuals, `memory x memory`, by slot.
    gram: Vec<f64>,
    /// Pairs pushed so far.
    count: usize,
}

impl<T: Scalar> AndersonRow<T> {
    /// An empty history for rows of width `dim`.
    pub fn new(dim: usize, memory: usize, damping: f64, regularisation: f64) -> Self {
        let z = vec![T::ZERO; dim * memory];
        Self { dim, memory, damping, regularisation, zs: z.clone(), fs: z.clone(), gs: z, gram: vec![0.0; memory * memory], count: 0 }
    }

    fn slot(&self, i: usize) -> std::ops::Range<usize> {
        i * self.dim..(i + 1) * self.dim
    }
}

impl<T: Scalar> RowUpdate<T> for AndersonRow<T> {
    fn next(&mut self, z: &mut [T], fz: &[T]) {
        let (m, d) = (self.memory, self.dim);
        let s = self.count % m;
        let r = self.slot(s);
        self.zs[r.clone()].copy_from_slice(z);
        self.fs[r.clone()].copy_from_slice(fz);
        for ((g, &f), &x) in self.gs[r.clone()].iter_mut().zip(fz).zip(z.iter()) {
            *g = f - x;
        }
        self.count += 1;
        let n = self.count.min(m);
        for i in 0..n {
            let v = dot(&self.gs[r.clone()], &self.gs[self.slot(i)]);
            self.gram[s * m + i] = v;
            self.gram[i * m + s] = v;
        }
        let diag_max = (0..n).map(|i| self.gram[i * m + i]).fold(0.0, f64::max);
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                h[i * n + j] = self.gram[i * m + j];
            }
            h[i * n + i] += self.regularisation * diag_max;
        }
        let alpha = solve_dense(h, vec![1.0; n]).and_then(|w| {
            let sum: f64 = w.iter().sum();
            (sum != 0.0 && sum.is_finite()).then(|| w.into_iter().map(|v| v / sum).collect::<Vec<_>>())
        });
        let (b, a) = (self.damping, 1.0 - self.damping);
        match alpha {
            Some(alpha) => {
                let mut acc = vec![0.0f64; d];
                for (i, &w) in alpha.iter().enumerate() {
                    let (zi, fi) = (&self.zs[self.slot(i)], &self.fs[self.slot(i)]);
                    for ((o, &x), &f) in acc.iter_mut().zip(zi).zip(fi) {
                        *o += w * (a * x.to_f64() + b * f.to_f64());
                    }
                }
                for (x, v) in z.iter_mut().zip(acc) {
                    *x = T::from_f64(v);
                }
            }
            // A degenerate history (all residuals zero or parallel beyond repair): fall back to
            // a damped Picard step from the newest pair.
            None => {
                for (x, &f) in z.iter_mut().zip(fz) {
                    *x = T::from_f64(a * x.to_f64() + b * f.to_f64());
                }
            }
        }
    }
}
