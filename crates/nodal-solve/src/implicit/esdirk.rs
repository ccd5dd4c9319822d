//! ESDIRK steps (Kvaerno 3/2 and 5/4) with Newton iterations on each implicit stage.
//!
//! Stage `i >= 1` solves `z = base_i + h gamma f(t_i, z)`, `base_i = y0 + h sum_{j<i} a_ij k_j`,
//! by (simplified) Newton: `(I - h gamma J) delta = base_i + h gamma f(t_i, z) - z`, with `J` a
//! dense forward-difference Jacobian at the step's start (one LU per step size serves every
//! stage) or, matrix-free, GMRES on Jacobian-vector products at the current iterate (a true
//! Newton step). The iteration stops when the increment, in units of the error tolerance and
//! scaled by the observed contraction `theta / (1 - theta)`, is below `newton_tol` (Hairer and
//! Wanner, "Solving ODEs II", IV.8). Then `k_i = (z - base_i) / (h gamma)`.
//!
//! A Jacobian is kept from one step to the next while Newton converged fast on it (largest
//! contraction at most [`REUSE_RATE`]); when a step fails on an old Jacobian it is retried once
//! with a fresh one before the step size is cut.

use super::host::{Evaluator, HostScratch, StepFailure, scaled_rms};
use super::tableaus::EsdirkTableau;
use super::{ImplicitSettings, LinearSolver, hermite_lane};
use crate::lanes::{Evaluate, LaneArith, Lanes};
use crate::stepper::{Stepper, Workspace};

/// Largest Newton contraction rate on the last step for which its Jacobian is kept.
pub const REUSE_RATE: f64 = 0.1;

/// An ESDIRK stepper: the tableau, the Newton and linear-solver settings, and the tolerances the
/// Newton test is scaled by.
#[derive(Debug, Clone, Copy)]
pub struct Esdirk {
    /// The method's coefficients.
    pub tableau: &'static EsdirkTableau,
    /// Newton and linear-solver settings.
    pub settings: ImplicitSettings,
    /// Relative tolerance of the solve (Newton increments are measured against it).
    pub rtol: f64,
    /// Absolute tolerance of the solve.
    pub atol: f64,
}

impl Esdirk {
    /// All implicit stages of one attempt; failures are recorded per lane in `host.failed`.
    fn stages<L: Evaluate>(&self, ev: &mut Evaluator<'_, L>, host: &mut HostScratch, ts: &[f64], hs: &[f64], dense: bool) {
        let tab = self.tableau;
        let (m, n, s, g) = (host.m, host.n, tab.c.len(), tab.gamma);
        let mn = m * n;
        let coef: Vec<f64> = hs.iter().map(|h| h * g).collect();
        if dense {
            for j in 0..m {
                if host.alive(j) && !host.matrix.factor(j, n, coef[j], &mut host.work) {
                    host.failed[j] = Some(StepFailure::Singular);
                }
            }
        }
        let mut rate_max = vec![0.0f64; m];
        let mut eta = vec![1.0f64; m];
        let mut prev = vec![0.0f64; m];
        let mut done = vec![false; m];
        for i in 1..s {
            host.times.clear();
            host.times.extend(ts.iter().zip(hs).map(|(t, h)| if tab.c[i] == 1.0 { t + h } else { t + tab.c[i] * h }));
            for j in 0..m {
                let rg = j * n..(j + 1) * n;
                let h = hs[j];
                for x in rg.clone() {
                    let (mut b, mut p) = (host.y0[x], 0.0);
                    for l in 0..i {
                        let kl = host.ks[l * mn + x];
                        b += h * tab.a[i][l] * kl;
                        p += tab.predictor[i][l] * kl;
                    }
                    host.base[x] = b;
                    host.z[x] = b + coef[j] * p;
                }
                done[j] = !host.alive(j);
            }
            let mut iterations = 0;
            while done.iter().any(|d| !d) && iterations < self.settings.max_newton {
                iterations += 1;
                ev.eval(&host.times, &host.z, &mut host.fz);
                host.work.newton_iterations += 1;
                for x in 0..mn {
                    host.rhs[x] = host.base[x] + coef[x / n] * host.fz[x] - host.z[x];
                }
                if dense {
                    for j in (0..m).filter(|&j| !done[j]) {
                        let d = &mut host.delta[j * n..(j + 1) * n];
                        d.copy_from_slice(&host.rhs[j * n..(j + 1) * n]);
                        host.matrix.solve(j, n, d);
                    }
                } else {
                    let active: Vec<bool> = done.iter().map(|d| !d).collect();
                    host.matrix.krylov_solve(
                        ev,
                        &mut host.work,
                        &self.settings,
                        &host.times,
                        &host.z,
                        &host.fz,
                        &coef,
                        &host.rhs,
                        &mut host.delta,
                        &active,
                        &mut host.failed,
                    );
                }
                for j in 0..m {
                    if done[j] || !host.alive(j) {
                        done[j] = true;
                        continue;
                    }
                    let rg = j * n..(j + 1) * n;
                    if !host.delta[rg.clone()].iter().all(|v| v.is_finite()) {
                        host.failed[j] = Some(StepFailure::NonFinite);
                        done[j] = true;
                        continue;
                    }
                    let norm = scaled_rms(&host.delta[rg.clone()], &host.z[rg.clone()], self.rtol, self.atol);
                    let roundoff =
                        host.delta[rg.clone()].iter().zip(&host.z[rg.clone()]).all(|(d, z)| d.abs() <= 4.0 * f64::EPSILON * z.abs());
                    for x in rg {
                        host.z[x] += host.delta[x];
                    }
                    if iterations > 1 {
                        let theta = if prev[j] > 0.0 { norm / prev[j] } else { 0.0 };
                        rate_max[j] = rate_max[j].max(theta);
                        if theta >= 1.0 && !roundoff {
                            host.failed[j] = Some(StepFailure::Diverged { iterations, rate: theta });
                            done[j] = true;
                            continue;
                        }
                        eta[j] = theta / (1.0 - theta);
                    }
                    prev[j] = norm;
                    if eta[j] * norm <= self.settings.newton_tol || roundoff || norm == 0.0 {
                        done[j] = true;
                    }
                }
            }
            for j in 0..m {
                if !done[j] && host.alive(j) {
                    host.failed[j] = Some(StepFailure::NotConverged { iterations, increment: prev[j] });
                }
                // Each stage's first increment is judged on its own (a small contraction
                // estimate carried over would accept a large first increment unchecked).
                eta[j] = 1.0;
                if host.alive(j) {
                    for x in j * n..(j + 1) * n {
                        host.ks[i * mn + x] = (host.z[x] - host.base[x]) / coef[j];
                    }
                }
            }
        }
        host.last_rate.copy_from_slice(&rate_max);
    }
}

impl Stepper for Esdirk {
    fn name(&self) -> &'static str {
        self.tableau.name
    }

    fn order(&self) -> u32 {
        self.tableau.order
    }

    fn has_error_estimate(&self) -> bool {
        true
    }

    fn buffers(&self) -> (usize, usize) {
        (self.tableau.c.len(), 1)
    }

    fn step<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        let tab = self.tableau;
        let (m, s) = (ts.len(), tab.c.len());
        let n = lanes.lane_width(&ws.y);
        let Workspace { y, y1, k, ytmp, out, scratch, host, .. } = ws;
        host.prepare(m, n, s);
        for j in 0..m {
            lanes.lane_to_f64(j, y, &mut host.y0[j * n..(j + 1) * n]);
            lanes.lane_to_f64(j, &k[0], &mut host.ks[j * n..(j + 1) * n]);
        }
        let dense = matches!(self.settings.linear, LinearSolver::Dense);
        let mut ev = Evaluator { lanes, input: ytmp, output: out, n, evals: 0 };
        let mut retried = false;
        loop {
            let exact = if dense {
                let keep: Vec<bool> = (0..m)
                    .map(|j| !retried && self.settings.reuse_jacobian && host.continues(j) && host.last_rate[j] <= REUSE_RATE)
                    .collect();
                host.matrix.ensure_jacobian(&mut ev, &mut host.work, ts, &host.y0, None, &keep, false, self.rtol, self.atol)
            } else {
                true
            };
            self.stages(&mut ev, host, ts, hs, dense);
            if !retried && !exact && host.failed.iter().any(|f| f.is_some()) {
                retried = true;
                host.failed.iter_mut().for_each(|f| *f = None);
                continue;
            }
            break;
        }
        let evals = ev.evals;
        let mn = m * n;
        for j in 0..m {
            let h = hs[j];
            for x in j * n..(j + 1) * n {
                let (mut y1v, mut e) = (host.y0[x], 0.0);
                for i in 0..s {
                    let ki = host.ks[i * mn + x];
                    y1v += h * tab.b[i] * ki;
                    e += h * tab.e[i] * ki;
                }
                host.y1[x] = y1v;
                host.err[x] = e;
            }
            let rg = j * n..(j + 1) * n;
            lanes.lane_from_f64(j, y1, &host.y1[rg.clone()]);
            lanes.lane_from_f64(j, &mut scratch[0], &host.err[rg.clone()]);
            for i in 1..s {
                lanes.lane_from_f64(j, &mut k[i], &host.ks[i * mn + rg.start..i * mn + rg.end]);
            }
        }
        host.last_y1.clear();
        host.last_y1.extend_from_slice(&host.y1);
        for j in 0..m {
            if !host.alive(j) {
                host.last_y1[j * n..(j + 1) * n].fill(f64::NAN);
            }
        }
        evals
    }

    fn error_ratios<L: Lanes>(&self, lanes: &L, ws: &mut Workspace<L::Buf>, _hs: &[f64], rtol: f64, atol: f64, out: &mut [f64]) {
        lanes.error_ratios(&ws.scratch[0], &ws.y, &ws.y1, rtol, atol, out);
    }

    fn prepare_dense<L: Evaluate>(&self, _lanes: &mut L, _ws: &mut Workspace<L::Buf>, _ts: &[f64], _hs: &[f64]) -> usize {
        0
    }

    fn interpolate<A: LaneArith>(&self, arith: &A, ws: &mut Workspace<A::Buf>, j: usize, theta: f64, h: f64) {
        let s = self.tableau.c.len();
        hermite_lane(arith, j, theta, h, &ws.y, &ws.y1, &ws.k[0], &ws.k[s - 1], &mut ws.out);
    }

    fn end_derivative(&self, _dense_ready: bool) -> Option<usize> {
        Some(self.tableau.c.len() - 1)
    }

    fn dense_slots(&self, out: &mut Vec<usize>) {
        out.clear();
        out.extend([0, self.tableau.c.len() - 1]);
    }

    fn interpolate_stored<A: LaneArith>(
        &self,
        arith: &A,
        j: usize,
        theta: f64,
        h: f64,
        y0: &A::Buf,
        y1: &A::Buf,
        ks: &[A::Buf],
        out: &mut A::Buf,
    ) {
        hermite_lane(arith, j, theta, h, y0, y1, &ks[0], &ks[1], out);
    }
}
