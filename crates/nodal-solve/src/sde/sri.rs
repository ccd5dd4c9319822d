//! Rößler's stochastic Runge-Kutta method of strong order 1.5 for Ito SDEs with diagonal (or
//! scalar, or additive) noise: "Runge-Kutta methods for the strong approximation of solutions of
//! stochastic differential equations", SIAM J. Numer. Anal. 48 (2010) 922-952: the four-stage
//! coefficients for diagonal noise with deterministic order 3 (the tableau torchsde calls
//! `srid2`).
//!
//! With `w = W(t + h) - W(t)`, `k = ∫ (W(s) - W(t)) ds` over the step, and per component
//! `I1 = w`, `I11 = (w^2 - h) / 2`, `I111 = (w^3 - 3 h w) / 6`, `I10 = k`, the four stages are
//!
//! `H0_s = y + sum_{j<s} A0_sj f(H0_j) h + B0_sj g(H1_j) I10 / h`,
//! `H1_s = y + sum_{j<s} A1_sj f(H0_j) h + B1_sj g(H1_j) sqrt(h)`,
//!
//! and `y' = y + sum_s alpha_s f(H0_s) h + g(H1_s) (b1_s I1 + b2_s I11 / sqrt(h) + b3_s I10 / h + b4_s I111 / h)`,
//! every product with `g` taken component by component (diagonal noise), so each is one
//! [`SdeTerms::diffusion_times`] with a per-entry weight. Forward solves only: its gradient is
//! not implemented (a typed error).

use super::terms::SdeTerms;
use crate::scalar::Scalar;

const STAGES: usize = 4;
const C0: [f64; STAGES] = [0.0, 1.0, 0.5, 0.0];
const C1: [f64; STAGES] = [0.0, 0.25, 1.0, 0.25];
const A0: [[f64; STAGES]; STAGES] = [[0.0; 4], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.0, 0.0], [0.0; 4]];
const A1: [[f64; STAGES]; STAGES] = [[0.0; 4], [0.25, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.25, 0.0]];
const B0: [[f64; STAGES]; STAGES] = [[0.0; 4], [0.0; 4], [1.0, 0.5, 0.0, 0.0], [0.0; 4]];
const B1: [[f64; STAGES]; STAGES] = [[0.0; 4], [-0.5, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [2.0, -1.0, 0.5, 0.0]];
const ALPHA: [f64; STAGES] = [1.0 / 6.0, 1.0 / 6.0, 2.0 / 3.0, 0.0];
const BETA1: [f64; STAGES] = [-1.0, 4.0 / 3.0, 2.0 / 3.0, 0.0];
const BETA2: [f64; STAGES] = [1.0, -4.0 / 3.0, 1.0 / 3.0, 0.0];
const BETA3: [f64; STAGES] = [2.0, -4.0 / 3.0, -2.0 / 3.0, 0.0];
const BETA4: [f64; STAGES] = [-2.0, 5.0 / 3.0, -2.0 / 3.0, 1.0];

/// Scratch of the SRI step: stage states, drift values, diffusion products, weights.
#[derive(Debug, Clone, Default)]
pub(crate) struct SriScratch<T> {
    h0: Vec<Vec<T>>,
    h1: Vec<Vec<T>>,
    f: Vec<Vec<T>>,
    /// `g(H1_j) I10 / h` and `g(H1_j) sqrt(h)`.
    gk: Vec<Vec<T>>,
    gs: Vec<Vec<T>>,
    weight: Vec<T>,
    ones: Vec<T>,
    kh: Vec<T>,
    out: Vec<T>,
    y0: Vec<T>,
}

impl<T: Scalar> SriScratch<T> {
    /// One SRI step of `y` in place (see the module docs).
    pub fn step(&mut self, terms: &mut dyn SdeTerms<T>, t: f64, h: f64, w: &[T], k: &[T], y: &mut [T]) {
        let n = y.len();
        let m = w.len();
        for v in [&mut self.h0, &mut self.h1, &mut self.f, &mut self.gk, &mut self.gs] {
            v.resize(STAGES, Vec::new());
            v.iter_mut().for_each(|b| b.resize(n, T::ZERO));
        }
        let (ht, sq) = (T::from_f64(h), T::from_f64(h.sqrt()));
        self.ones.clear();
        self.ones.resize(m, sq);
        self.kh.clear();
        self.kh.extend(k.iter().map(|v| *v * T::from_f64(1.0 / h)));
        self.weight.resize(m, T::ZERO);
        self.out.resize(n, T::ZERO);
        self.y0.clear();
        self.y0.extend_from_slice(y);
        for s in 0..STAGES {
            self.h0[s].copy_from_slice(&self.y0);
            self.h1[s].copy_from_slice(&self.y0);
            for j in 0..s {
                let (a0, b0, a1, b1) = (T::from_f64(A0[s][j] * h), T::from_f64(B0[s][j]), T::from_f64(A1[s][j] * h), T::from_f64(B1[s][j]));
                for i in 0..n {
                    self.h0[s][i] += a0 * self.f[j][i] + b0 * self.gk[j][i];
                    self.h1[s][i] += a1 * self.f[j][i] + b1 * self.gs[j][i];
                }
            }
            terms.drift(t + C0[s] * h, &self.h0[s], &mut self.f[s]);
            let tg = t + C1[s] * h;
            terms.diffusion_times(tg, &self.h1[s], &self.kh, &mut self.gk[s]);
            terms.diffusion_times(tg, &self.h1[s], &self.ones, &mut self.gs[s]);
            for e in 0..m {
                let (wv, kv) = (w[e].to_f64(), k[e].to_f64());
                let i11 = 0.5 * (wv * wv - h);
                let i111 = (wv * wv * wv - 3.0 * h * wv) / 6.0;
                self.weight[e] = T::from_f64(BETA1[s] * wv + BETA2[s] * i11 / h.sqrt() + BETA3[s] * kv / h + BETA4[s] * i111 / h);
            }
            terms.diffusion_times(tg, &self.h1[s], &self.weight, &mut self.out);
            let a = T::from_f64(ALPHA[s]) * ht;
            for i in 0..n {
                y[i] += a * self.f[s][i] + self.out[i];
            }
        }
    }
}
