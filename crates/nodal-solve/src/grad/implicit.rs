//! Exact gradients through ESDIRK steps: the discrete adjoint of each implicit step, by the
//! implicit function theorem at the converged stages.
//!
//! For one step `k_0 = f(t, y)`, `z_i = y + h sum_{j<i} a_ij k_j + h gamma k_i`,
//! `k_i = f(t_i, z_i)`, `y_1 = y + h sum_i b_i k_i`, differentiating the stage equation gives
//! `(I - h gamma J_i) dk_i = J_i d(base_i) + f_theta dtheta` with `J_i = df/dy (t_i, z_i)`. So,
//! from the last stage down, with `kbar_i` the cotangent of `k_i` gathered so far,
//!
//! ```text
//! mu_i = (I - h gamma J_i)^{-T} kbar_i               (GMRES on vector-Jacobian products)
//! ybar += J_i^T mu_i,  kbar_j += h a_ij J_i^T mu_i (j < i),  thetabar += f_theta^T mu_i
//! ```
//!
//! and the explicit first stage adds `J_0^T kbar_0` and `f_theta^T kbar_0`. Dense outputs inside
//! a step are cubic Hermite in `(y, y_1, k_0, k_{s-1})` and add to those cotangents. The stages
//! are recomputed from the tape's states by re-running the step (Newton to the forward solve's
//! tolerance), so the gradient is that of the computed solution up to the Newton tolerance.

use super::Gradients;
use crate::dynamics::VjpDynamics;
use crate::error::SolveError;
use crate::implicit::Esdirk;
use crate::implicit::linalg::Gmres;
use crate::lanes::StateEval;
use crate::solution::{OutputAt, Tape};
use crate::state::State;
use crate::stats::Stats;
use crate::stepper::explicit_rk::hermite_basis;
use crate::stepper::{Stepper, Workspace};

/// Relative residual of the transposed stage solves.
const ADJOINT_GMRES_TOL: f64 = 1e-12;

/// Gradients of `L` from a tape of an ESDIRK forward solve (backprop or checkpointing); the
/// same contract as [`super::backprop_tape`].
#[allow(clippy::too_many_arguments)]
pub fn backprop_implicit_tape<S: State, D: VjpDynamics<S>>(
    f: &mut D,
    stepper: &Esdirk,
    tape: &Tape<S>,
    ts: &[f64],
    ys: &[S],
    ybar: &[S],
    want_t: bool,
) -> Result<Gradients<S, D::Params>, SolveError> {
    let tab = stepper.tableau;
    let s = tab.c.len();
    let mut stats = Stats::default();
    let y0 = &ys[0];
    let n = y0.len();
    let mut pbar = f.param_zeros();
    let mut scratch_p = f.param_zeros();
    let mut abar = y0.zeros_like();
    let (n_k, n_scratch) = stepper.buffers();
    let mut ws = Workspace::new(n_k, n_scratch, 1, || y0.zeros_like());
    let mut kbar: Vec<S> = (0..s).map(|_| y0.zeros_like()).collect();
    let (mut z, mut v, mut tmp) = (y0.zeros_like(), y0.zeros_like(), y0.zeros_like());
    let (mut rhs, mut mu, mut av_in, mut av_out) = (vec![0.0; n], vec![0.0; n], y0.zeros_like(), y0.zeros_like());
    let mut gmres = Gmres::default();
    let n_steps = tape.steps.len();
    let every = tape.every;
    let mut out_end = tape.outputs.len();
    let mut seg_states: Vec<S> = Vec::new();
    let mut seg_start = if n_steps == 0 { 0 } else { ((n_steps - 1) / every) * every };
    let mut segments_left = n_steps > 0;
    while segments_left {
        let seg_end = (seg_start + every).min(n_steps);
        seg_states.clear();
        seg_states.push(tape.checkpoints[seg_start / every].clone());
        for j in seg_start..seg_end - 1 {
            let st = tape.steps[j];
            ws.y.assign(seg_states.last().expect("segment starts at its checkpoint"));
            f.eval(st.t, &ws.y, &mut ws.k[0]);
            stats.nfe += 1 + stepper.step(&mut StateEval::new(&mut *f), &mut ws, &[st.t], &[st.h]);
            seg_states.push(ws.y1.clone());
        }
        for j in (seg_start..seg_end).rev() {
            let st = tape.steps[j];
            let (t, h) = (st.t, st.h);
            let y = &seg_states[j - seg_start];
            // Recompute the step's stages.
            ws.y.assign(y);
            f.eval(t, &ws.y, &mut ws.k[0]);
            stats.nfe += 1 + stepper.step(&mut StateEval::new(&mut *f), &mut ws, &[t], &[h]);
            if let Some(why) = ws.host.failed.first().cloned().flatten() {
                return Err(SolveError::ImplicitStep { t, h, reason: format!("replaying the step for its gradient: {why}") });
            }
            // Cotangents of the step's outputs.
            let mut out_begin = out_end;
            while out_begin > 0 && tape.outputs[out_begin - 1].step == j {
                out_begin -= 1;
            }
            kbar.iter_mut().for_each(|k| k.scale(0.0));
            let mut ybar0 = y0.zeros_like();
            for o in &tape.outputs[out_begin..out_end] {
                let OutputAt { index, theta, .. } = *o;
                if theta >= 1.0 {
                    abar.axpy(1.0, &ybar[index]);
                } else {
                    let [h00, h10, h01, h11] = hermite_basis(theta);
                    ybar0.axpy(h00, &ybar[index]);
                    abar.axpy(h01, &ybar[index]);
                    kbar[0].axpy(h * h10, &ybar[index]);
                    kbar[s - 1].axpy(h * h11, &ybar[index]);
                }
            }
            out_end = out_begin;
            // y_1 = y + h sum b_i k_i.
            ybar0.axpy(1.0, &abar);
            for i in 0..s {
                kbar[i].axpy(h * tab.b[i], &abar);
            }
            let g = tab.gamma;
            for i in (1..s).rev() {
                let ti = if tab.c[i] == 1.0 { t + h } else { t + tab.c[i] * h };
                // z_i = y + h (sum_{l<i} a_il k_l + gamma k_i).
                let mut coeffs = tab.a[i].to_vec();
                coeffs.push(g);
                z.set_lincomb(y, h, &coeffs, &ws.k[..=i]);
                // mu = (I - h gamma J_i)^{-T} kbar_i.
                kbar[i].write_f64(&mut rhs);
                mu.fill(0.0);
                let calls = gmres.solve(1, n, &rhs, &mut mu, ADJOINT_GMRES_TOL, n.clamp(1, 64), 20 * n + 100, |x, out| {
                    av_in.read_f64(x);
                    scratch_p.scale(0.0);
                    f.vjp(ti, &z, &av_in, &mut av_out, &mut scratch_p);
                    av_out.write_f64(out);
                    for (o, xi) in out.iter_mut().zip(x) {
                        *o = xi - h * g * *o;
                    }
                });
                stats.nvjp += calls;
                let lane = gmres.lanes[0];
                if !lane.converged {
                    return Err(SolveError::ImplicitStep {
                        t,
                        h,
                        reason: format!(
                            "the transposed stage solve of the gradient did not converge ({} GMRES iterations, relative residual {:.2e})",
                            lane.iterations, lane.residual
                        ),
                    });
                }
                tmp.read_f64(&mu);
                f.vjp(ti, &z, &tmp, &mut v, &mut pbar);
                stats.nvjp += 1;
                ybar0.axpy(1.0, &v);
                for l in 0..i {
                    if tab.a[i][l] != 0.0 {
                        kbar[l].axpy(h * tab.a[i][l], &v);
                    }
                }
            }
            f.vjp(t, y, &kbar[0], &mut v, &mut pbar);
            stats.nvjp += 1;
            ybar0.axpy(1.0, &v);
            abar = ybar0;
        }
        if seg_start == 0 {
            segments_left = false;
        } else {
            seg_start -= every;
        }
    }
    let mut ts_grad = None;
    if want_t {
        let mut gt = vec![0.0; ts.len()];
        let mut fy = y0.zeros_like();
        for k in 1..ts.len() {
            f.eval(ts[k], &ys[k], &mut fy);
            stats.nfe += 1;
            gt[k] = ybar[k].dot(&fy);
        }
        f.eval(ts[0], y0, &mut fy);
        stats.nfe += 1;
        gt[0] = -abar.dot(&fy);
        ts_grad = Some(gt);
    }
    abar.axpy(1.0, &ybar[0]);
    Ok(Gradients { y0: abar, params: pbar, ts: ts_grad, stats, reconstruction_error: None })
}
