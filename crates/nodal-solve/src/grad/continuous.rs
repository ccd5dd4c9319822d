//! The continuous adjoint of Chen et al. 2018 ("Neural Ordinary Differential Equations", NeurIPS),
//! with O(1) memory in the number of steps.
//!
//! The augmented state `z = [y, a, a_theta]` is integrated from `t_N` back to `t_0` under
//!
//! ```text
//! dy/dt = f(t, y),   da/dt = -a^T df/dy,   da_theta/dt = -a^T df/dtheta,
//! ```
//!
//! starting from `[y(t_N), dL/dy(t_N), 0]`. At every earlier output time `t_k` the loss's
//! cotangent `dL/dy(t_k)` is added to `a` and `y` is reset to the stored forward output (the
//! reverse-time reconstruction of `y` is unstable for dissipative dynamics). These jumps happen
//! inside one reverse solve: steps land on the output times and the controller keeps its step
//! size, instead of restarting the solver (and its initial-step selection) for every interval.

use super::Gradients;
use crate::dynamics::{Dynamics, VjpDynamics};
use crate::error::SolveError;
use crate::integrate::{Record, diffeqsolve, finish_joint};
use crate::lanes::{Joint, OutputHook};
use crate::norm::{ErrorNorm, RmsNorm};
use crate::options::SolveOptions;
use crate::save_at::SaveAt;
use crate::state::State;

/// Options of the reverse solve.
#[derive(Debug, Clone)]
pub struct AdjointOptions {
    /// Method, tolerances and limits of the reverse-time solve of `[y, a, a_theta]`.
    pub solve: SolveOptions,
    /// Error control on `y` and `a` only, not on `a_theta` (Kidger, Chen, Lyons 2021, "Hey,
    /// that's not an ODE": fewer rejected steps at no loss of accuracy in `y` and `a`).
    pub seminorm: bool,
}

/// RMS error over `y` and `a` of the augmented state, ignoring `a_theta`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdjointSeminorm;

impl<S: State, P: State> ErrorNorm<(S, (S, P))> for AdjointSeminorm {
    fn norm(&self, err: &(S, (S, P)), y0: &(S, (S, P)), y1: &(S, (S, P)), rtol: f64, atol: f64) -> f64 {
        let (s1, n1) = S::weighted_sq_sum(&err.0, &y0.0, &y1.0, rtol, atol);
        let (s2, n2) = S::weighted_sq_sum(&err.1.0, &y0.1.0, &y1.1.0, rtol, atol);
        let n = n1 + n2;
        if n == 0 { 0.0 } else { ((s1 + s2) / n as f64).sqrt() }
    }
}

/// The augmented reverse-time dynamics.
struct AugmentedDynamics<'a, D> {
    f: &'a mut D,
}

impl<S: State, D: VjpDynamics<S>> Dynamics<(S, (S, D::Params))> for AugmentedDynamics<'_, D> {
    fn eval(&mut self, t: f64, z: &(S, (S, D::Params)), dz: &mut (S, (S, D::Params))) {
        let (dy, (da, dp)) = (&mut dz.0, (&mut dz.1.0, &mut dz.1.1));
        dp.scale(0.0);
        self.f.eval_and_vjp(t, &z.0, &z.1.0, dy, da, dp);
        da.scale(-1.0);
        dp.scale(-1.0);
    }
}

/// A reverse-time solve of an adjoint state `z0` from `ts_rev[0]` through `ts_rev`, landing on
/// every time to apply `hook` (the loss's cotangent jumps, state resets).
pub(super) fn reverse_solve<Z: State, F: Dynamics<Z>, N: ErrorNorm<Z>>(
    aug: &mut F,
    norm: &N,
    z0: &Z,
    ts_rev: &[f64],
    opts: &SolveOptions,
    hook: OutputHook<'_, Z>,
) -> crate::error::SolveResult<Z, crate::integrate::LaneResult<Z>> {
    let mut lanes = Joint::new(aug, norm, z0, Some(hook));
    let out = diffeqsolve(&mut lanes, &opts.stepper(), &opts.control(), &SaveAt::times(ts_rev).landing(), &opts.limits(), Record::None);
    finish_joint(lanes.ys, ts_rev, out)
}

/// `dL/dt_k` for every output time: `ybar_k . f(t_k, y_k)` for `k >= 1`, `-a0 . f(t_0, y_0)`
/// for the first (`a0` is the adjoint at `t_0` before `ybar_0` is added). Counts its
/// evaluations in `stats`.
pub(super) fn time_gradients<S: State, D: Dynamics<S>>(
    f: &mut D,
    ts: &[f64],
    ys: &[S],
    ybar: &[S],
    a0: &S,
    stats: &mut crate::stats::Stats,
) -> Vec<f64> {
    let n = ts.len();
    let mut g = vec![0.0; n];
    let mut fy = ys[0].zeros_like();
    for k in 1..n {
        f.eval(ts[k], &ys[k], &mut fy);
        stats.nfe += 1;
        g[k] = ybar[k].dot(&fy);
    }
    f.eval(ts[0], &ys[0], &mut fy);
    stats.nfe += 1;
    g[0] = -a0.dot(&fy);
    g
}

/// Gradients by the continuous adjoint. `ys` are the forward outputs at `ts`, `ybar[k] =
/// dL/dy(t_k)`. Backward statistics count augmented evaluations (each one `f` and one VJP).
pub fn adjoint<S: State, D: VjpDynamics<S>>(
    f: &mut D,
    ts: &[f64],
    ys: &[S],
    ybar: &[S],
    opts: &AdjointOptions,
    want_t: bool,
) -> Result<Gradients<S, D::Params>, SolveError> {
    let n = ts.len();
    let p0 = f.param_zeros();
    if n == 1 {
        return Ok(Gradients {
            y0: ybar[0].clone(),
            params: p0,
            ts: want_t.then(|| vec![0.0]),
            stats: Default::default(),
            reconstruction_error: Some(0.0),
        });
    }
    let ts_rev: Vec<f64> = ts.iter().rev().copied().collect();
    let z0 = (ys[n - 1].clone(), (ybar[n - 1].clone(), p0));
    let mut drift = 0.0f64;
    let mut hook = |idx: usize, _t: f64, z: &mut (S, (S, D::Params))| {
        let k = n - 1 - idx;
        z.1.0.axpy(1.0, &ybar[k]);
        // How far the reconstruction drifted, before it is reset to the forward output.
        let y_norm = ys[k].dot(&ys[k]).sqrt();
        z.0.axpy(-1.0, &ys[k]);
        drift = drift.max(z.0.dot(&z.0).sqrt() / y_norm.max(1e-300));
        z.0.assign(&ys[k]);
        true
    };
    let mut aug = AugmentedDynamics { f: &mut *f };
    let sol = if opts.seminorm {
        reverse_solve(&mut aug, &AdjointSeminorm, &z0, &ts_rev, &opts.solve, &mut hook)
    } else {
        reverse_solve(&mut aug, &RmsNorm, &z0, &ts_rev, &opts.solve, &mut hook)
    };
    let (sol, _) = sol.map_err(|e| e.error)?;
    let mut stats = sol.stats;
    stats.nvjp = stats.nfe;
    let (_, (a0, pbar)) = sol.ys.into_iter().next_back().expect("solution has the final output");
    let ts_grad = want_t.then(|| time_gradients(f, ts, ys, ybar, &a0, &mut stats));
    let mut y0bar = a0;
    y0bar.axpy(1.0, &ybar[0]);
    Ok(Gradients { y0: y0bar, params: pbar, ts: ts_grad, stats, reconstruction_error: Some(drift) })
}
