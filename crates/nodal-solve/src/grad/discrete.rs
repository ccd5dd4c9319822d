//! Exact gradients of the computed solution: the discrete adjoint of each explicit Runge-Kutta
//! step, replayed in reverse from the tape (every state kept, or checkpoints and recomputed
//! segments).
//!
//! For one step `Y_i = y + h sum_{j<i} a_ij k_j`, `k_i = f(t + c_i h, Y_i)`,
//! `y_1 = y + h sum_i b_i k_i`, dense outputs `y_o = y + h sum_i b_i(theta_o) k_i`, the reverse
//! sweep is, for `i` from the last stage down,
//!
//! ```text
//! kbar_i = h (b_i ybar_1 + sum_o b_i(theta_o) ybar_o) + h sum_{j>i} a_ji Ybar_j
//! Ybar_i = (df/dy at Y_i)^T kbar_i,      thetabar += (df/dtheta at Y_i)^T kbar_i
//! ybar   = ybar_1 + sum_o ybar_o + sum_i Ybar_i
//! ```
//!
//! Cubic Hermite outputs add `h00 ybar_o` to `ybar`, `h h10 ybar_o` to `kbar_1`, `h01 ybar_o` to
//! `ybar_1` and `h h11 ybar_o` to the cotangent of `f(t_1, y_1)` (the FSAL stage, or an extra
//! VJP at `y_1`).

use super::Gradients;
use crate::dynamics::VjpDynamics;
use crate::lanes::StateEval;
use crate::solution::{OutputAt, Tape};
use crate::state::State;
use crate::stats::Stats;
use crate::stepper::explicit_rk::{dense_weights, hermite_basis};
use crate::stepper::{ExplicitRk, Stepper, Workspace};
use crate::tableau::{DenseOutput, MAX_STAGES, Tableau};

/// Checkpoint interval for a solve of about `steps` steps: `ceil(sqrt(steps))`, which balances
/// stored checkpoints against the recomputed segment (memory O(sqrt(steps)), one replay).
pub fn default_checkpoint_interval(steps: usize) -> usize {
    ((steps as f64).sqrt().ceil() as usize).max(1)
}

/// Buffers for the reverse sweep of one step.
pub(super) struct StepAdjoint<S> {
    ys: Vec<S>,
    ybars: Vec<S>,
    kbar: S,
    fbar1: S,
    live: [bool; MAX_STAGES],
}

impl<S: State> StepAdjoint<S> {
    /// Buffers for the steps of `tab` (its interpolation stages included) over states like `y`.
    pub(super) fn new(tab: &'static Tableau, y: &S) -> Self {
        let n_st = ExplicitRk::new(tab).dense_stage_count().max(tab.c.len());
        Self {
            ys: (0..n_st).map(|_| y.zeros_like()).collect(),
            ybars: (0..n_st).map(|_| y.zeros_like()).collect(),
            kbar: y.zeros_like(),
            fbar1: y.zeros_like(),
            live: [false; MAX_STAGES],
        }
    }
}

/// Reverse sweep of one step; `abar` holds `ybar_{n+1}` on entry and `ybar_n` on exit.
#[allow(clippy::too_many_arguments)]
pub(super) fn step_backward<S: State, D: VjpDynamics<S>>(
    tab: &'static Tableau,
    f: &mut D,
    t: f64,
    h: f64,
    y: &S,
    interior: &[(f64, &S)],
    abar: &mut S,
    pbar: &mut D::Params,
    ws: &mut Workspace<S>,
    sa: &mut StepAdjoint<S>,
    stats: &mut Stats,
) {
    let s = tab.c.len();
    let has_interior = !interior.is_empty();
    let hermite = matches!(tab.dense, DenseOutput::Hermite);
    let n_st = if has_interior { ExplicitRk::new(tab).dense_stage_count() } else { s };
    // Rows of `a` and nodes for every stage in use (main then extra).
    let (extra_c, extra_a, coeffs): (&[f64], &[&[f64]], &[&[f64]]) = match tab.dense {
        DenseOutput::Polynomial { extra_c, extra_a, coeffs, .. } => (extra_c, extra_a, coeffs),
        DenseOutput::Hermite => (&[], &[], &[]),
    };
    let row = |i: usize| if i < s { tab.a[i] } else { extra_a[i - s] };
    let node = |i: usize| if i < s { tab.c[i] } else { extra_c[i - s] };
    let bw = |i: usize| if i < s { tab.b[i] } else { 0.0 };

    // Recompute stage inputs (and the derivatives later stages need).
    let need_all_k = hermite && has_interior && !tab.fsal;
    sa.ys[0].assign(y);
    for i in 0..n_st {
        if i > 0 {
            let (done, _) = ws.k.split_at(i);
            sa.ys[i].set_lincomb(y, h, row(i), done);
        }
        if i + 1 < n_st || need_all_k {
            f.eval(t + node(i) * h, &sa.ys[i], &mut ws.k[i]);
            stats.nfe += 1;
        }
    }

    // Hermite outputs: contributions to ybar_1 (possibly through f(y_1)), kbar_1 and ybar_n.
    let mut fbar1_live = false;
    if hermite && has_interior {
        sa.fbar1.scale(0.0);
        for &(theta, yo) in interior {
            let [_, _, h01, h11] = hermite_basis(theta);
            abar.axpy(h01, yo);
            sa.fbar1.axpy(h * h11, yo);
        }
        fbar1_live = true;
        if !tab.fsal {
            // ybar_1 += J(y_1)^T fbar1, with y_1 = y + h sum b_i k_i.
            ws.y1.set_lincomb(y, h, tab.b, &ws.k[..s]);
            f.vjp(t + h, &ws.y1, &sa.fbar1, &mut ws.ytmp, pbar);
            stats.nvjp += 1;
            abar.axpy(1.0, &ws.ytmp);
            fbar1_live = false;
        }
    }

    // Reverse sweep over stages.
    let mut w = [[0.0f64; MAX_STAGES]; 1];
    for i in (0..n_st).rev() {
        let mut live = false;
        sa.kbar.scale(0.0);
        if bw(i) != 0.0 {
            sa.kbar.axpy(h * bw(i), abar);
            live = true;
        }
        if has_interior {
            for &(theta, yo) in interior {
                let c = if hermite {
                    let [_, h10, _, _] = hermite_basis(theta);
                    if i == 0 { h10 } else { 0.0 }
                } else {
                    dense_weights(coeffs, theta, &mut w[0]);
                    w[0][i]
                };
                if c != 0.0 {
                    sa.kbar.axpy(h * c, yo);
                    live = true;
                }
            }
        }
        if fbar1_live && i == s - 1 {
            sa.kbar.axpy(1.0, &sa.fbar1);
            live = true;
        }
        for j in i + 1..n_st {
            let aji = row(j).get(i).copied().unwrap_or(0.0);
            if aji != 0.0 && sa.live[j] {
                sa.kbar.axpy(h * aji, &sa.ybars[j]);
                live = true;
            }
        }
        sa.live[i] = live;
        if live {
            let (ybars, kbar) = (&mut sa.ybars, &sa.kbar);
            f.vjp(t + node(i) * h, &sa.ys[i], kbar, &mut ybars[i], pbar);
            stats.nvjp += 1;
        }
    }
    // ybar_n = ybar_1 + sum_i Ybar_i + output terms.
    for i in 0..n_st {
        if sa.live[i] {
            abar.axpy(1.0, &sa.ybars[i]);
        }
    }
    for &(theta, yo) in interior {
        let c = if hermite { hermite_basis(theta)[0] } else { 1.0 };
        abar.axpy(c, yo);
    }
}

/// Gradients of `L` from a tape of the forward solve (backprop or checkpointing).
///
/// `ybar[k] = dL/dy(t_k)` for every output time. Returns `dL/dy0`, `dL/dtheta` and, with
/// `want_t`, `dL/dt_k` (which needs the forward outputs `ys`).
#[allow(clippy::too_many_arguments)]
pub fn backprop_tape<S: State, D: VjpDynamics<S>>(
    f: &mut D,
    tab: &'static Tableau,
    tape: &Tape<S>,
    ts: &[f64],
    ys: &[S],
    ybar: &[S],
    want_t: bool,
) -> Gradients<S, D::Params> {
    let mut stats = Stats::default();
    let y0 = &ys[0];
    let mut pbar = f.param_zeros();
    let mut abar = y0.zeros_like();
    let stepper = ExplicitRk::new(tab);
    let (n_k, n_scratch) = stepper.buffers();
    let mut ws = Workspace::new(n_k, n_scratch, 1, || y0.zeros_like());
    let mut sa = StepAdjoint::new(tab, y0);
    let n = tape.steps.len();
    let m = tape.every;
    let mut seg_states: Vec<S> = Vec::new();
    let mut out_end = tape.outputs.len();
    let mut seg_start = if n == 0 { 0 } else { ((n - 1) / m) * m };
    let mut interior: Vec<(f64, &S)> = Vec::new();
    // Segments from the last to the first.
    let mut segments_left = n > 0;
    while segments_left {
        let seg_end = (seg_start + m).min(n);
        // Replay the segment from its checkpoint (only the states are needed).
        let c = seg_start / m;
        seg_states.truncate(0);
        seg_states.push(tape.checkpoints[c].clone());
        for j in seg_start..seg_end - 1 {
            let st = tape.steps[j];
            ws.y.assign(seg_states.last().expect("segment starts at its checkpoint"));
            f.eval(st.t, &ws.y, &mut ws.k[0]);
            stats.nfe += 1;
            stats.nfe += stepper.step(&mut StateEval::new(&mut *f), &mut ws, &[st.t], &[st.h]);
            seg_states.push(ws.y1.clone());
        }
        for j in (seg_start..seg_end).rev() {
            let st = tape.steps[j];
            // Outputs of step j: those at the end feed ybar_{n+1}; interior ones are dense.
            let mut out_begin = out_end;
            while out_begin > 0 && tape.outputs[out_begin - 1].step == j {
                out_begin -= 1;
            }
            interior.clear();
            for o in &tape.outputs[out_begin..out_end] {
                let OutputAt { index, theta, .. } = *o;
                if theta >= 1.0 {
                    abar.axpy(1.0, &ybar[index]);
                } else {
                    interior.push((theta, &ybar[index]));
                }
            }
            out_end = out_begin;
            step_backward(tab, f, st.t, st.h, &seg_states[j - seg_start], &interior, &mut abar, &mut pbar, &mut ws, &mut sa, &mut stats);
        }
        if seg_start == 0 {
            segments_left = false;
        } else {
            seg_start -= m;
        }
    }
    let mut ts_grad = None;
    if want_t {
        let mut g = vec![0.0; ts.len()];
        let mut fy = y0.zeros_like();
        for k in 1..ts.len() {
            f.eval(ts[k], &ys[k], &mut fy);
            stats.nfe += 1;
            g[k] = ybar[k].dot(&fy);
        }
        f.eval(ts[0], y0, &mut fy);
        stats.nfe += 1;
        g[0] = -abar.dot(&fy);
        ts_grad = Some(g);
    }
    abar.axpy(1.0, &ybar[0]);
    Gradients { y0: abar, params: pbar, ts: ts_grad, stats, reconstruction_error: None }
}
