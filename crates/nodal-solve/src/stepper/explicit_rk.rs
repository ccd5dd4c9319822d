//! Explicit Runge-Kutta methods driven by a [`Tableau`]: stages, embedded error estimates
//! (DOP853's combined estimator included) and dense output (native polynomials or cubic
//! Hermite). See [`crate::tableau`] for the formulas.

use super::{Stepper, Workspace};
use crate::lanes::{Evaluate, LaneArith, Lanes};
use crate::tableau::{DenseOutput, ErrorEstimator, MAX_STAGES, Tableau};

/// An explicit Runge-Kutta stepper: the tableau is data, this is the engine.
///
/// Workspace layout: `k[0..s]` the stages, `k[s..s + extra]` DOP853-style interpolation
/// stages, and one more slot for `f(t1, y1)` of non-FSAL methods with Hermite output;
/// `scratch = [err, err3, zero]`.
#[derive(Debug, Clone, Copy)]
pub struct ExplicitRk {
    /// The method's coefficients.
    pub tableau: &'static Tableau,
}

impl ExplicitRk {
    /// The stepper of `tableau`.
    pub const fn new(tableau: &'static Tableau) -> Self {
        Self { tableau }
    }

    /// Number of stages evaluated on a step that carries dense output (main plus extra).
    pub fn dense_stage_count(&self) -> usize {
        let tab = self.tableau;
        match tab.dense {
            DenseOutput::Polynomial { extra_c, .. } => tab.c.len() + extra_c.len(),
            DenseOutput::Hermite => tab.c.len(),
        }
    }

    /// Slot of `f(t1, y1)` for non-FSAL Hermite interpolation.
    fn f1_slot(&self) -> usize {
        self.dense_stage_count().max(self.tableau.c.len())
    }

    /// `times[j] <- ts[j] + c * hs[j]`.
    fn stage_times(times: &mut Vec<f64>, ts: &[f64], hs: &[f64], c: f64) {
        times.clear();
        times.extend(ts.iter().zip(hs).map(|(t, h)| t + c * h));
    }

    /// Polynomial dense output of lane `j` from the stages `ks`.
    #[allow(clippy::too_many_arguments)]
    fn polynomial<A: LaneArith>(arith: &A, coeffs: &[&[f64]], j: usize, theta: f64, h: f64, y0: &A::Buf, ks: &[A::Buf], out: &mut A::Buf) {
        let mut w = [0.0; MAX_STAGES];
        dense_weights(coeffs, theta, &mut w);
        arith.lincomb_lane(j, out, y0, h, &w[..coeffs.len()], ks);
    }

    /// Cubic Hermite output of lane `j` through `y0, k0 = f(y0), y1, f1 = f(y1)`.
    #[allow(clippy::too_many_arguments)]
    fn hermite<A: LaneArith>(
        arith: &A,
        j: usize,
        theta: f64,
        h: f64,
        y0: &A::Buf,
        y1: &A::Buf,
        k0: &A::Buf,
        f1: &A::Buf,
        out: &mut A::Buf,
    ) {
        let [h00, h10, h01, h11] = hermite_basis(theta);
        arith.combine4_lane(j, out, [h00, h01, h * h10, h * h11], [y0, y1, k0, f1]);
    }
}

impl Stepper for ExplicitRk {
    fn name(&self) -> &'static str {
        self.tableau.name
    }

    fn order(&self) -> u32 {
        self.tableau.order
    }

    fn has_error_estimate(&self) -> bool {
        !matches!(self.tableau.error, ErrorEstimator::None)
    }

    fn buffers(&self) -> (usize, usize) {
        (self.f1_slot() + 1, 3)
    }

    fn step<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        let tab = self.tableau;
        let s = tab.c.len();
        for i in 1..s {
            let (done, rest) = ws.k.split_at_mut(i);
            lanes.lincomb(&mut ws.ytmp, &ws.y, hs, tab.a[i], done);
            Self::stage_times(&mut ws.times, ts, hs, tab.c[i]);
            lanes.eval(&ws.times, &ws.ytmp, &mut rest[0]);
        }
        if tab.fsal && s > 1 {
            std::mem::swap(&mut ws.y1, &mut ws.ytmp);
        } else {
            lanes.lincomb(&mut ws.y1, &ws.y, hs, tab.b, &ws.k[..s]);
        }
        s - 1
    }

    fn error_ratios<L: Lanes>(&self, lanes: &L, ws: &mut Workspace<L::Buf>, hs: &[f64], rtol: f64, atol: f64, out: &mut [f64]) {
        let tab = self.tableau;
        let s = tab.c.len();
        let (errs, zero) = ws.scratch.split_at_mut(2);
        let zero = &zero[0];
        match tab.error {
            ErrorEstimator::None => out.fill(0.0),
            ErrorEstimator::Embedded(e) => {
                lanes.lincomb(&mut errs[0], zero, hs, e, &ws.k[..s]);
                lanes.error_ratios(&errs[0], &ws.y, &ws.y1, rtol, atol, out);
            }
            ErrorEstimator::Dop853 { e5, e3 } => {
                lanes.lincomb(&mut errs[0], zero, hs, e5, &ws.k[..s]);
                lanes.lincomb(&mut errs[1], zero, hs, e3, &ws.k[..s]);
                lanes.error_ratios(&errs[0], &ws.y, &ws.y1, rtol, atol, out);
                ws.ratios.clear();
                ws.ratios.resize(out.len(), 0.0);
                lanes.error_ratios(&errs[1], &ws.y, &ws.y1, rtol, atol, &mut ws.ratios);
                for (r, n3) in out.iter_mut().zip(&ws.ratios) {
                    let n5 = *r;
                    let den = (n5 * n5 + 0.01 * n3 * n3).sqrt();
                    *r = if den > 0.0 { n5 * n5 / den } else { 0.0 };
                }
            }
        }
    }

    fn prepare_dense<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        let tab = self.tableau;
        let s = tab.c.len();
        match tab.dense {
            DenseOutput::Polynomial { extra_c, extra_a, .. } => {
                for m in 0..extra_c.len() {
                    let (done, rest) = ws.k.split_at_mut(s + m);
                    lanes.lincomb(&mut ws.ytmp, &ws.y, hs, extra_a[m], done);
                    Self::stage_times(&mut ws.times, ts, hs, extra_c[m]);
                    lanes.eval(&ws.times, &ws.ytmp, &mut rest[0]);
                }
                extra_c.len()
            }
            DenseOutput::Hermite if tab.fsal => 0,
            DenseOutput::Hermite => {
                Self::stage_times(&mut ws.times, ts, hs, 1.0);
                let f1 = self.f1_slot();
                lanes.eval(&ws.times, &ws.y1, &mut ws.k[f1]);
                1
            }
        }
    }

    fn interpolate<A: LaneArith>(&self, arith: &A, ws: &mut Workspace<A::Buf>, j: usize, theta: f64, h: f64) {
        let tab = self.tableau;
        match tab.dense {
            DenseOutput::Polynomial { coeffs, .. } => Self::polynomial(arith, coeffs, j, theta, h, &ws.y, &ws.k, &mut ws.out),
            DenseOutput::Hermite => {
                let f1 = if tab.fsal { tab.c.len() - 1 } else { self.f1_slot() };
                Self::hermite(arith, j, theta, h, &ws.y, &ws.y1, &ws.k[0], &ws.k[f1], &mut ws.out)
            }
        }
    }

    fn end_derivative(&self, dense_ready: bool) -> Option<usize> {
        let tab = self.tableau;
        let s = tab.c.len();
        if tab.fsal && s > 1 {
            Some(s - 1)
        } else if dense_ready && matches!(tab.dense, DenseOutput::Hermite) {
            Some(self.f1_slot())
        } else {
            None
        }
    }

    fn dense_slots(&self, out: &mut Vec<usize>) {
        let tab = self.tableau;
        out.clear();
        match tab.dense {
            DenseOutput::Polynomial { .. } => out.extend(0..self.dense_stage_count()),
            DenseOutput::Hermite if tab.fsal => out.extend([0, tab.c.len() - 1]),
            DenseOutput::Hermite => out.extend([0, self.f1_slot()]),
        }
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
        match self.tableau.dense {
            DenseOutput::Polynomial { coeffs, .. } => Self::polynomial(arith, coeffs, j, theta, h, y0, ks, out),
            DenseOutput::Hermite => Self::hermite(arith, j, theta, h, y0, y1, &ks[0], &ks[1], out),
        }
    }
}

/// Weights `b_i(theta)` of a polynomial interpolant into `w` (main then extra stages).
pub(crate) fn dense_weights(coeffs: &[&[f64]], theta: f64, w: &mut [f64; MAX_STAGES]) {
    for (i, row) in coeffs.iter().enumerate() {
        let mut acc = 0.0;
        for c in row.iter().rev() {
            acc = (acc + c) * theta;
        }
        w[i] = acc;
    }
}

/// Cubic Hermite basis `(h00, h10, h01, h11)` at `theta`.
pub(crate) fn hermite_basis(theta: f64) -> [f64; 4] {
    let t2 = theta * theta;
    let t3 = t2 * theta;
    [2.0 * t3 - 3.0 * t2 + 1.0, t3 - 2.0 * t2 + theta, -2.0 * t3 + 3.0 * t2, t3 - t2]
}
