//! Host-side work of an implicit step: the block's states copied to `f64`, evaluations of the
//! dynamics through the block buffers, finite-difference Jacobians, the iteration matrix
//! `M = I - c J` (dense LU or matrix-free GMRES), and the failures and work counters the loop
//! reads after the step.

use super::linalg::{Gmres, lu_factor, lu_solve};
use super::{ImplicitSettings, LinearSolver};
use crate::lanes::Evaluate;

/// Why an implicit step could not be computed at the step size tried (the loop retries with a
/// quarter of the step; below the minimum step it reports [`crate::SolveError::ImplicitStep`]).
#[derive(Debug, Clone, PartialEq)]
pub enum StepFailure {
    /// The Newton iterates grew: contraction rate `rate >= 1` at iteration `iterations`.
    Diverged {
        /// Iterations done.
        iterations: usize,
        /// Ratio of the last two Newton increments.
        rate: f64,
    },
    /// The Newton iteration did not meet its tolerance within the iteration limit.
    NotConverged {
        /// Iterations done.
        iterations: usize,
        /// Last scaled Newton increment (1 = the error tolerance).
        increment: f64,
    },
    /// The iteration matrix `I - h gamma J` is singular to working precision.
    Singular,
    /// GMRES did not reach its tolerance.
    Krylov {
        /// Krylov iterations done.
        iterations: usize,
        /// Relative residual reached.
        residual: f64,
    },
    /// A stage produced a non-finite value.
    NonFinite,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Diverged { iterations, rate } => {
                write!(f, "Newton iteration diverged (contraction rate {rate:.3} at iteration {iterations})")
            }
            Self::NotConverged { iterations, increment } => {
                write!(f, "Newton iteration did not converge in {iterations} iterations (last scaled increment {increment:.3e})")
            }
            Self::Singular => write!(f, "the iteration matrix I - h gamma J is singular"),
            Self::Krylov { iterations, residual } => {
                write!(f, "GMRES did not converge in {iterations} iterations (relative residual {residual:.3e})")
            }
            Self::NonFinite => write!(f, "a stage value is not finite"),
        }
    }
}

/// Linear-algebra work of the last step, added to each block lane's statistics by the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepWork {
    /// Jacobians formed.
    pub jacobians: usize,
    /// LU factorisations.
    pub factorisations: usize,
    /// Newton iterations.
    pub newton_iterations: usize,
    /// GMRES iterations.
    pub linear_iterations: usize,
}

/// Host buffers of an implicit stepper, kept in the [`crate::stepper::Workspace`] between steps
/// (empty for explicit methods). Arrays are lane-major: lane `j` occupies `[j n, (j + 1) n)`.
#[derive(Debug, Clone, Default)]
pub struct HostScratch {
    /// Lanes of the current block.
    pub m: usize,
    /// Entries per lane.
    pub n: usize,
    /// Per block lane: why its step failed, if it did.
    pub failed: Vec<Option<StepFailure>>,
    /// Work since the loop last read it.
    pub work: StepWork,
    pub(crate) y0: Vec<f64>,
    pub(crate) f0: Vec<f64>,
    /// Stage derivatives (ESDIRK) or stage increments `u_i` (Rosenbrock): `stages x m x n`.
    pub(crate) ks: Vec<f64>,
    pub(crate) z: Vec<f64>,
    pub(crate) fz: Vec<f64>,
    pub(crate) base: Vec<f64>,
    pub(crate) rhs: Vec<f64>,
    pub(crate) delta: Vec<f64>,
    pub(crate) y1: Vec<f64>,
    pub(crate) err: Vec<f64>,
    pub(crate) ft: Vec<f64>,
    pub(crate) times: Vec<f64>,
    pub(crate) matrix: IterationMatrix,
    /// Largest Newton contraction rate of each lane's last step (Jacobian reuse test).
    pub(crate) last_rate: Vec<f64>,
    /// Each lane's last propagated state (to recognise the lane continuing at the next step).
    pub(crate) last_y1: Vec<f64>,
}

impl HostScratch {
    /// Size the buffers for `m` lanes of width `n` and `stages` stage vectors; clear failures.
    pub(crate) fn prepare(&mut self, m: usize, n: usize, stages: usize) {
        if (self.m, self.n) != (m, n) {
            self.matrix.invalidate();
            self.last_y1.clear();
        }
        self.m = m;
        self.n = n;
        let mn = m * n;
        for v in [
            &mut self.y0,
            &mut self.f0,
            &mut self.z,
            &mut self.fz,
            &mut self.base,
            &mut self.rhs,
            &mut self.delta,
            &mut self.y1,
            &mut self.err,
            &mut self.ft,
        ] {
            v.resize(mn, 0.0);
        }
        self.ks.resize(stages * mn, 0.0);
        self.failed.clear();
        self.failed.resize(m, None);
        self.last_rate.resize(m, 0.0);
    }

    /// Whether block lane `j` has failed this step.
    pub(crate) fn alive(&self, j: usize) -> bool {
        self.failed[j].is_none()
    }

    /// Whether lane `j` starts where its last step ended (the same lane, accepted).
    pub(crate) fn continues(&self, j: usize) -> bool {
        let n = self.n;
        self.last_y1.len() == self.m * n && self.last_y1[j * n..(j + 1) * n] == self.y0[j * n..(j + 1) * n]
    }
}

/// Evaluations of the dynamics on host vectors, through the block buffers.
pub(crate) struct Evaluator<'a, L: Evaluate> {
    pub lanes: &'a mut L,
    pub input: &'a mut L::Buf,
    pub output: &'a mut L::Buf,
    pub n: usize,
    pub evals: usize,
}

impl<L: Evaluate> Evaluator<'_, L> {
    /// `out_j <- f(times[j], x_j)` for the block lanes `j < times.len()`.
    pub fn eval(&mut self, times: &[f64], x: &[f64], out: &mut [f64]) {
        let n = self.n;
        for j in 0..times.len() {
            self.lanes.lane_from_f64(j, self.input, &x[j * n..(j + 1) * n]);
        }
        self.lanes.eval(times, self.input, self.output);
        for j in 0..times.len() {
            self.lanes.lane_to_f64(j, self.output, &mut out[j * n..(j + 1) * n]);
        }
        self.evals += 1;
    }
}

/// The iteration matrix `M_j = I - coef_j J_j` of each lane: a dense Jacobian by forward
/// differences and its LU, or matrix-free products for GMRES.
#[derive(Debug, Clone, Default)]
pub(crate) struct IterationMatrix {
    jac: Vec<f64>,
    jac_y: Vec<f64>,
    jac_t: Vec<f64>,
    jac_ok: Vec<bool>,
    lu: Vec<f64>,
    piv: Vec<usize>,
    lu_coef: Vec<f64>,
    gmres: Gmres,
    perturbed: Vec<f64>,
    fp: Vec<f64>,
    fm: Vec<f64>,
    f_base: Vec<f64>,
    eps: Vec<f64>,
}

impl IterationMatrix {
    pub fn invalidate(&mut self) {
        self.jac_ok.clear();
        self.lu_coef.clear();
    }

    /// Whether lane `j`'s Jacobian was formed at exactly `(t, y)`.
    fn fresh_at(&self, j: usize, n: usize, t: f64, y: &[f64]) -> bool {
        self.jac_ok.get(j).copied().unwrap_or(false) && self.jac_t[j] == t && self.jac_y[j * n..(j + 1) * n] == *y
    }

    /// Make each lane's dense Jacobian available at `(times[j], y_j)`, with `f = f(times, y)` if
    /// it is known exactly (else it is evaluated),
    /// unless `keep[j]` allows lane `j` to keep its current (possibly older) one. All lanes are
    /// differenced together (`n` evaluations, `2 n` with `central` differences) when any needs
    /// it; the others keep theirs.
    /// Returns whether the Jacobians are now exact at the given points for every lane.
    #[allow(clippy::too_many_arguments)]
    pub fn ensure_jacobian<L: Evaluate>(
        &mut self,
        ev: &mut Evaluator<'_, L>,
        work: &mut StepWork,
        times: &[f64],
        y: &[f64],
        f: Option<&[f64]>,
        keep: &[bool],
        central: bool,
        rtol: f64,
        atol: f64,
    ) -> bool {
        let (m, n) = (times.len(), ev.n);
        if self.jac_ok.len() != m {
            self.jac_ok = vec![false; m];
            self.jac_t = vec![f64::NAN; m];
            self.lu_coef = vec![f64::NAN; m];
        }
        let need: Vec<bool> =
            (0..m).map(|j| !self.fresh_at(j, n, times[j], &y[j * n..(j + 1) * n]) && !(keep[j] && self.jac_ok[j])).collect();
        if !need.iter().any(|&x| x) {
            return (0..m).all(|j| self.fresh_at(j, n, times[j], &y[j * n..(j + 1) * n]));
        }
        self.jac.resize(m * n * n, 0.0);
        self.jac_y.resize(m * n, 0.0);
        self.perturbed.resize(m * n, 0.0);
        self.fp.resize(m * n, 0.0);
        self.f_base.resize(m * n, 0.0);
        self.eps.resize(m, 0.0);
        // The increment follows the scale of the entry or the tolerances' threshold atol / rtol.
        let threshold = if rtol > 0.0 { (atol / rtol).max(1e-300) } else { 1.0 };
        if central {
            // Central differences, two evaluations per column: truncation error O(dh^2) with
            // dh ~ eps^(1/3), about 1e-10 relative instead of forward differences' 1e-8.
            self.fm.resize(m * n, 0.0);
            let cb = f64::EPSILON.cbrt();
            for col in 0..n {
                self.perturbed.copy_from_slice(&y[..m * n]);
                for j in 0..m {
                    let yc = y[j * n + col];
                    let dh = cb * yc.abs().max(threshold);
                    self.perturbed[j * n + col] = yc + dh;
                    self.eps[j] = dh;
                }
                ev.eval(times, &self.perturbed, &mut self.fp);
                for j in 0..m {
                    let yc = y[j * n + col];
                    let up = self.perturbed[j * n + col];
                    let down = yc - self.eps[j];
                    self.perturbed[j * n + col] = down;
                    self.eps[j] = up - down;
                }
                ev.eval(times, &self.perturbed, &mut self.fm);
                for j in (0..m).filter(|&j| need[j]) {
                    for r in 0..n {
                        self.jac[j * n * n + r * n + col] = (self.fp[j * n + r] - self.fm[j * n + r]) / self.eps[j];
                    }
                }
            }
        } else {
            // Forward differences, one column per evaluation for every lane at once. They need
            // f(t, y) to full precision: a derivative carried over from the last step (an
            // ESDIRK's Newton-based last stage) is only as accurate as that Newton solve, and
            // its error would be divided by the tiny increment.
            let f = match f {
                Some(f) => f,
                None => {
                    ev.eval(times, y, &mut self.f_base);
                    &self.f_base[..]
                }
            };
            let sq = f64::EPSILON.sqrt();
            for col in 0..n {
                self.perturbed.copy_from_slice(&y[..m * n]);
                for j in 0..m {
                    let yc = y[j * n + col];
                    let dh = sq * yc.abs().max(threshold);
                    let moved = yc + dh;
                    self.perturbed[j * n + col] = moved;
                    self.eps[j] = moved - yc;
                }
                ev.eval(times, &self.perturbed, &mut self.fp);
                for j in (0..m).filter(|&j| need[j]) {
                    for r in 0..n {
                        self.jac[j * n * n + r * n + col] = (self.fp[j * n + r] - f[j * n + r]) / self.eps[j];
                    }
                }
            }
        }
        // Only the lanes that needed a Jacobian take the new one, so a lane's Jacobians (and
        // hence its steps) do not depend on which other lanes share its block.
        for j in (0..m).filter(|&j| need[j]) {
            self.jac_y[j * n..(j + 1) * n].copy_from_slice(&y[j * n..(j + 1) * n]);
            self.jac_t[j] = times[j];
            self.jac_ok[j] = true;
            self.lu_coef[j] = f64::NAN;
        }
        work.jacobians += 1;
        (0..m).all(|j| self.fresh_at(j, n, times[j], &y[j * n..(j + 1) * n]))
    }

    /// Factor `I - coef J_j` for lane `j` unless already factored with this coefficient.
    /// Returns `false` when it is singular.
    pub fn factor(&mut self, j: usize, n: usize, coef: f64, work: &mut StepWork) -> bool {
        if self.lu_coef[j] == coef {
            return true;
        }
        self.lu.resize(self.jac.len(), 0.0);
        self.piv.resize(self.jac_y.len(), 0);
        let (src, dst) = (&self.jac[j * n * n..(j + 1) * n * n], &mut self.lu[j * n * n..(j + 1) * n * n]);
        for (k, (d, s)) in dst.iter_mut().zip(src).enumerate() {
            *d = -coef * s + if k % (n + 1) == 0 { 1.0 } else { 0.0 };
        }
        work.factorisations += 1;
        let ok = lu_factor(dst, n, &mut self.piv[j * n..(j + 1) * n]);
        self.lu_coef[j] = if ok { coef } else { f64::NAN };
        ok
    }

    /// `x <- (I - coef J_j)^{-1} x` with the factors of [`IterationMatrix::factor`].
    pub fn solve(&self, j: usize, n: usize, x: &mut [f64]) {
        lu_solve(&self.lu[j * n * n..(j + 1) * n * n], n, &self.piv[j * n..(j + 1) * n], x);
    }

    /// Matrix-free solve of `(I - coef_j J_j) x_j = b_j` for the lanes with `active[j]`, `J_j`
    /// the Jacobian at `(times[j], at_j)` applied by forward differences around `f_at_j`:
    /// `J v ~ (f(t, at + e v) - f(t, at)) / e`, `e = sqrt(eps) (1 + |at|) / |v|`. Lanes that
    /// miss the tolerance are marked in `failed`.
    #[allow(clippy::too_many_arguments)]
    pub fn krylov_solve<L: Evaluate>(
        &mut self,
        ev: &mut Evaluator<'_, L>,
        work: &mut StepWork,
        settings: &ImplicitSettings,
        times: &[f64],
        at: &[f64],
        f_at: &[f64],
        coef: &[f64],
        b: &[f64],
        x: &mut [f64],
        active: &[bool],
        failed: &mut [Option<StepFailure>],
    ) {
        let LinearSolver::Krylov { restart, max_iterations, tolerance } = settings.linear else {
            unreachable!("krylov_solve is only called in Krylov mode")
        };
        let (m, n) = (times.len(), ev.n);
        self.perturbed.resize(m * n, 0.0);
        self.fp.resize(m * n, 0.0);
        self.eps.resize(m, 0.0);
        let mut bm = b[..m * n].to_vec();
        for j in 0..m {
            if !active[j] {
                bm[j * n..(j + 1) * n].fill(0.0);
            }
        }
        x[..m * n].fill(0.0);
        let at_norm: Vec<f64> = (0..m).map(|j| super::linalg::norm2(&at[j * n..(j + 1) * n])).collect();
        let (perturbed, fp, eps) = (&mut self.perturbed, &mut self.fp, &mut self.eps);
        let calls = self.gmres.solve(m, n, &bm, x, tolerance, restart, max_iterations, |v, out| {
            for j in 0..m {
                let vn = super::linalg::norm2(&v[j * n..(j + 1) * n]);
                eps[j] = if vn > 0.0 { f64::EPSILON.sqrt() * (1.0 + at_norm[j]) / vn } else { 0.0 };
                for i in 0..n {
                    perturbed[j * n + i] = at[j * n + i] + eps[j] * v[j * n + i];
                }
            }
            ev.eval(times, perturbed, fp);
            for j in 0..m {
                for i in 0..n {
                    let jv = if eps[j] > 0.0 { (fp[j * n + i] - f_at[j * n + i]) / eps[j] } else { 0.0 };
                    out[j * n + i] = v[j * n + i] - coef[j] * jv;
                }
            }
        });
        work.linear_iterations += calls;
        for j in 0..m {
            let lane = self.gmres.lanes[j];
            if active[j] && !lane.converged {
                failed[j] = Some(StepFailure::Krylov { iterations: lane.iterations, residual: lane.residual });
            }
        }
    }
}

/// RMS of `x_i / (atol + rtol |scale_i|)`: the Newton increment in units of the error tolerance.
pub(crate) fn scaled_rms(x: &[f64], scale: &[f64], rtol: f64, atol: f64) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let s: f64 = x
        .iter()
        .zip(scale)
        .map(|(v, y)| {
            let r = v / (atol + rtol * y.abs());
            r * r
        })
        .sum();
    (s / x.len() as f64).sqrt()
}
