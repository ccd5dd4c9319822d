//! Limited-memory "good" Broyden's method on `g(z) = f(z) - z = 0` (Broyden 1965, "A class of
//! methods for solving nonlinear simultaneous equations"), the DEQ forward and backward solver of
//! Bai et al. 2019.
//!
//! The inverse Jacobian of `g` is approximated by `H = -I + sum_i u_i v_i^T` (`-I` is exact
//! where `f` has a zero Jacobian); the step is `z <- z - H g(z)`, which is a Picard step while
//! no update is stored. After a step `s` with residual change `y`, the Sherman-Morrison form of
//! the good Broyden update adds `u = (s - H y) / (s^T H y)`, `v = H^T s`; an update whose
//! denominator vanishes is skipped. At most `memory` updates are kept; when full, the method restarts
//! from `H = -I` (overwriting only the oldest update, as some DEQ codes do, leaves the remaining
//! Sherman-Morrison terms inconsistent and diverged on the symmetric test problem here).

use super::RowUpdate;
use crate::Scalar;

/// One row's Broyden state.
#[derive(Debug, Clone)]
pub struct BroydenRow<T> {
    dim: usize,
    memory: usize,
    us: Vec<T>,
    vs: Vec<T>,
    stored: usize,
    prev: Option<(Vec<T>, Vec<T>)>,
}

impl<T: Scalar> BroydenRow<T> {
    /// No updates yet, rows of width `dim`.
    pub fn new(dim: usize, memory: usize) -> Self {
        Self { dim, memory, us: vec![T::ZERO; dim * memory], vs: vec![T::ZERO; dim * memory], stored: 0, prev: None }
    }

    fn slot(&self, i: usize) -> std::ops::Range<usize> {
        i * self.dim..(i + 1) * self.dim
    }

    /// `out = H x = -x + sum u_i (v_i . x)` (or `H^T x` with `transpose`).
    fn apply(&self, x: &[f64], transpose: bool) -> Vec<f64> {
        let mut out: Vec<f64> = x.iter().map(|v| -v).collect();
        for i in 0..self.stored {
            let (u, v) = (&self.us[self.slot(i)], &self.vs[self.slot(i)]);
            let (a, b) = if transpose { (v, u) } else { (u, v) };
            let c: f64 = b.iter().zip(x).map(|(p, q)| p.to_f64() * q).sum();
            if c != 0.0 {
                for (o, p) in out.iter_mut().zip(a) {
                    *o += p.to_f64() * c;
                }
            }
        }
        out
    }
}

impl<T: Scalar> RowUpdate<T> for BroydenRow<T> {
    fn next(&mut self, z: &mut [T], fz: &[T]) {
        let g: Vec<f64> = fz.iter().zip(z.iter()).map(|(f, x)| f.to_f64() - x.to_f64()).collect();
        let zf: Vec<f64> = z.iter().map(|x| x.to_f64()).collect();
        if let Some((zp, gp)) = self.prev.take() {
            if self.stored == self.memory {
                // Restart from H = -I: the Sherman-Morrison terms build on each other, so
                // dropping only the oldest leaves the rest inconsistent (it diverged in tests).
                self.stored = 0;
            }
            let s: Vec<f64> = zf.iter().zip(&zp).map(|(a, b)| a - b.to_f64()).collect();
            let y: Vec<f64> = g.iter().zip(&gp).map(|(a, b)| a - b.to_f64()).collect();
            let hy = self.apply(&y, false);
            let vt = self.apply(&s, true);
            let denom: f64 = vt.iter().zip(&y).map(|(a, b)| a * b).sum();
            let scale = dot_f(&vt, &vt).sqrt() * dot_f(&y, &y).sqrt();
            if denom.abs() > 1e-12 * scale && denom.is_finite() {
                let r = self.slot(self.stored);
                for ((u, sv), hv) in self.us[r.clone()].iter_mut().zip(&s).zip(&hy) {
                    *u = T::from_f64((sv - hv) / denom);
                }
                for (v, &x) in self.vs[r].iter_mut().zip(&vt) {
                    *v = T::from_f64(x);
                }
                self.stored += 1;
            }
        }
        let hg = self.apply(&g, false);
        self.prev = Some((z.to_vec(), g.iter().map(|&v| T::from_f64(v)).collect()));
        for (x, (&z0, step)) in z.iter_mut().zip(zf.iter().zip(hg)) {
            *x = T::from_f64(z0 - step);
        }
    }
}

fn dot_f(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
