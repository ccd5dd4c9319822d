//! Rosenbrock steps (Rodas5): linearly implicit, no Newton iteration.
//!
//! Each step forms the Jacobian `J` and the time derivative `f_t` at its start by central
//! differences (`2 n + 2` evaluations: a Rosenbrock method's order rests on an accurate `J`,
//! and forward differences' 1e-8 relative error showed as an error floor), and every stage solves one linear system with
//! `W = I / (h gamma) - J`, i.e. `u = h gamma (I - h gamma J)^{-1} rhs` (see
//! [`super::tableaus`] for the stage formulas). The order conditions assume the exact Jacobian
//! at `y0`, so it is formed on every step (a rejected step retried from the same point reuses
//! it). Matrix-free mode solves each stage with GMRES on forward-difference products at `y0`.
//!
//! The last stage is evaluated at the embedded solution, not at `y1`, so `f(t1, y1)` costs one
//! more evaluation: at the next step's start, or for dense output (cubic Hermite through
//! `f(t0, y0)` and `f(t1, y1)`), where the next step then reuses it.

use super::host::{Evaluator, StepFailure};
use super::tableaus::RosenbrockTableau;
use super::{ImplicitSettings, LinearSolver, hermite_lane};
use crate::lanes::{Evaluate, LaneArith, Lanes};
use crate::stepper::{Stepper, Workspace};

/// A Rosenbrock stepper: the tableau, the linear-solver settings and the tolerances (which set
/// the finite-difference increments of the Jacobian).
#[derive(Debug, Clone, Copy)]
pub struct Rosenbrock {
    /// The method's coefficients.
    pub tableau: &'static RosenbrockTableau,
    /// Linear-solver settings (the Newton settings are unused).
    pub settings: ImplicitSettings,
    /// Relative tolerance of the solve.
    pub rtol: f64,
    /// Absolute tolerance of the solve.
    pub atol: f64,
}

impl Stepper for Rosenbrock {
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
        (2, 1)
    }

    fn step<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        let tab = self.tableau;
        let (m, s) = (ts.len(), tab.alpha.len());
        let n = lanes.lane_width(&ws.y);
        let mn = m * n;
        let Workspace { y, y1, k, ytmp, out, scratch, host, .. } = ws;
        host.prepare(m, n, s);
        for j in 0..m {
            lanes.lane_to_f64(j, y, &mut host.y0[j * n..(j + 1) * n]);
            lanes.lane_to_f64(j, &k[0], &mut host.f0[j * n..(j + 1) * n]);
        }
        let dense = matches!(self.settings.linear, LinearSolver::Dense);
        let mut ev = Evaluator { lanes, input: ytmp, output: out, n, evals: 0 };
        let coef: Vec<f64> = hs.iter().map(|h| h * tab.gamma).collect();
        if dense {
            let keep = vec![false; m];
            host.matrix.ensure_jacobian(&mut ev, &mut host.work, ts, &host.y0, Some(&host.f0), &keep, true, self.rtol, self.atol);
            for j in 0..m {
                if !host.matrix.factor(j, n, coef[j], &mut host.work) {
                    host.failed[j] = Some(StepFailure::Singular);
                }
            }
        }
        // f_t by a central difference in time (two evaluations).
        let dts: Vec<f64> = ts.iter().zip(hs).map(|(t, h)| f64::EPSILON.cbrt() * t.abs().max(h.abs())).collect();
        host.times.clear();
        host.times.extend(ts.iter().zip(&dts).map(|(t, d)| t + d));
        ev.eval(&host.times, &host.y0, &mut host.ft);
        host.times.clear();
        host.times.extend(ts.iter().zip(&dts).map(|(t, d)| t - d));
        ev.eval(&host.times, &host.y0, &mut host.fz);
        for j in 0..m {
            let dt = (ts[j] + dts[j]) - (ts[j] - dts[j]);
            for x in j * n..(j + 1) * n {
                host.ft[x] = (host.ft[x] - host.fz[x]) / dt;
            }
        }
        let active: Vec<bool> = (0..m).map(|j| host.alive(j)).collect();
        for i in 0..s {
            if i == 0 {
                host.fz.copy_from_slice(&host.f0);
            } else {
                for x in 0..mn {
                    let mut z = host.y0[x];
                    for l in 0..i {
                        z += tab.a[i][l] * host.ks[l * mn + x];
                    }
                    host.z[x] = z;
                }
                host.times.clear();
                host.times.extend(ts.iter().zip(hs).map(|(t, h)| if tab.alpha[i] == 1.0 { t + h } else { t + tab.alpha[i] * h }));
                ev.eval(&host.times, &host.z, &mut host.fz);
            }
            for j in 0..m {
                let h = hs[j];
                for x in j * n..(j + 1) * n {
                    let mut r = host.fz[x] + h * tab.gamma_sum[i] * host.ft[x];
                    for l in 0..i {
                        r += tab.c[i][l] / h * host.ks[l * mn + x];
                    }
                    host.rhs[x] = r;
                }
            }
            if dense {
                for j in (0..m).filter(|&j| active[j]) {
                    let d = &mut host.delta[j * n..(j + 1) * n];
                    d.copy_from_slice(&host.rhs[j * n..(j + 1) * n]);
                    host.matrix.solve(j, n, d);
                }
            } else {
                host.times.clear();
                host.times.extend_from_slice(ts);
                host.matrix.krylov_solve(
                    &mut ev,
                    &mut host.work,
                    &self.settings,
                    &host.times,
                    &host.y0,
                    &host.f0,
                    &coef,
                    &host.rhs,
                    &mut host.delta,
                    &active,
                    &mut host.failed,
                );
            }
            for j in 0..m {
                for x in j * n..(j + 1) * n {
                    host.ks[i * mn + x] = coef[j] * host.delta[x];
                }
            }
        }
        let evals = ev.evals;
        for x in 0..mn {
            let (mut y1v, mut e) = (host.y0[x], 0.0);
            for i in 0..s {
                let u = host.ks[i * mn + x];
                y1v += tab.m[i] * u;
                e += tab.e[i] * u;
            }
            host.y1[x] = y1v;
            host.err[x] = e;
        }
        for j in 0..m {
            let rg = j * n..(j + 1) * n;
            if host.alive(j) && !host.y1[rg.clone()].iter().all(|v| v.is_finite()) {
                host.failed[j] = Some(StepFailure::NonFinite);
            }
            lanes.lane_from_f64(j, y1, &host.y1[rg.clone()]);
            lanes.lane_from_f64(j, &mut scratch[0], &host.err[rg]);
        }
        evals
    }

    fn error_ratios<L: Lanes>(&self, lanes: &L, ws: &mut Workspace<L::Buf>, _hs: &[f64], rtol: f64, atol: f64, out: &mut [f64]) {
        lanes.error_ratios(&ws.scratch[0], &ws.y, &ws.y1, rtol, atol, out);
    }

    fn prepare_dense<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        ws.times.clear();
        ws.times.extend(ts.iter().zip(hs).map(|(t, h)| t + h));
        lanes.eval(&ws.times, &ws.y1, &mut ws.k[1]);
        1
    }

    fn interpolate<A: LaneArith>(&self, arith: &A, ws: &mut Workspace<A::Buf>, j: usize, theta: f64, h: f64) {
        hermite_lane(arith, j, theta, h, &ws.y, &ws.y1, &ws.k[0], &ws.k[1], &mut ws.out);
    }

    fn end_derivative(&self, dense_ready: bool) -> Option<usize> {
        dense_ready.then_some(1)
    }

    fn dense_slots(&self, out: &mut Vec<usize>) {
        out.clear();
        out.extend([0, 1]);
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
