//! Snapshot of the work every method does on several problems: accepted and rejected steps and
//! evaluations, joint and per-sample, forward and backward. A change to the loop, a stepper or a
//! controller that alters any count shows up here as a diff against
//! `tests/snapshots/step_counts.txt`.
//!
//! To accept an intended change, run with `NODAL_BLESS=1` and commit the rewritten file (say why
//! in the commit message).

mod common;
use common::weights;

use nodal_solve::grad::GradMethod;
use nodal_solve::mlp::Mlp;
use nodal_solve::tableau::{BOSH3, DOPRI5, DOPRI8, TSIT5};
use nodal_solve::{FnDynamics, METHODS, PidController, SolveOptions, Stats, Tableau};
use std::fmt::Write;

mod api {
    //! The calls the snapshot makes, in one place, so that the expected counts never move when
    //! an entry point is renamed.
    use nodal_solve::grad::{AdjointOptions, GradMethod, adjoint, backprop_tape, checkpointed_adjoint};
    use nodal_solve::per_sample::{RowDynamics, per_sample_gradients, solve_per_sample};
    use nodal_solve::{Dynamics, Record, RmsNorm, SolveOptions, Stats, VjpDynamics, solve_dense, solve_recorded};

    pub fn joint<D: Dynamics<Vec<f64>>>(f: &mut D, y0: &[f64], ts: &[f64], o: &SolveOptions) -> Stats {
        solve_recorded(f, &y0.to_vec(), ts, o, &RmsNorm, Record::None).unwrap().0.stats
    }

    pub fn dense<D: Dynamics<Vec<f64>>>(f: &mut D, y0: &[f64], ts: &[f64], o: &SolveOptions) -> Stats {
        solve_dense(f, &y0.to_vec(), ts, o, &RmsNorm).unwrap().0.stats
    }

    /// Forward and backward statistics of a joint solve with `L = sum of squares of the outputs`.
    pub fn joint_grad<D: VjpDynamics<Vec<f64>, Params = Vec<f64>>>(
        f: &mut D,
        y0: &[f64],
        ts: &[f64],
        o: &SolveOptions,
        method: GradMethod,
        seminorm: bool,
    ) -> (Stats, Stats) {
        let record = match method {
            GradMethod::Backprop => Record::Every(1),
            GradMethod::Checkpoint(m) => Record::Every(m.unwrap()),
            GradMethod::Adjoint => Record::None,
            GradMethod::AdjointCheckpointed(m) => Record::Checkpoints(m.unwrap()),
        };
        let (sol, tape) = solve_recorded(f, &y0.to_vec(), ts, o, &RmsNorm, record).unwrap();
        let ybar: Vec<Vec<f64>> = sol.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
        let g = match method {
            GradMethod::Adjoint => adjoint(f, ts, &sol.ys, &ybar, &AdjointOptions { solve: o.clone(), seminorm }, true).unwrap(),
            GradMethod::AdjointCheckpointed(_) => {
                checkpointed_adjoint(f, tape.as_ref().unwrap(), ts, &sol.ys, &ybar, &AdjointOptions { solve: o.clone(), seminorm }, true)
                    .unwrap()
            }
            _ => backprop_tape(f, o.method, tape.as_ref().unwrap(), ts, &sol.ys, &ybar, true),
        };
        (sol.stats, g.stats)
    }

    /// Per-row forward statistics, batched calls and row evaluations.
    pub fn rows<D: RowDynamics<f64>>(f: &mut D, y0: &[f64], dim: usize, ts: &[Vec<f64>], o: &SolveOptions) -> (Vec<Stats>, usize, usize) {
        let s = solve_per_sample(f, y0, dim, ts, o, Record::None).unwrap();
        (s.row_stats, s.calls, s.row_evaluations)
    }

    /// Per-row backward statistics of a per-sample solve.
    pub fn rows_grad<D: RowDynamics<f64> + VjpDynamics<Vec<f64>, Params = Vec<f64>>>(
        f: &mut D,
        y0: &[f64],
        dim: usize,
        ts: &[Vec<f64>],
        o: &SolveOptions,
        method: GradMethod,
    ) -> Vec<Stats> {
        let record = match method {
            GradMethod::Backprop => Record::Every(1),
            GradMethod::Checkpoint(m) => Record::Every(m.unwrap()),
            GradMethod::Adjoint => Record::None,
            GradMethod::AdjointCheckpointed(m) => Record::Checkpoints(m.unwrap()),
        };
        let sol = solve_per_sample(f, y0, dim, ts, o, record).unwrap();
        let ybar: Vec<Vec<f64>> = sol.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
        let a = AdjointOptions { solve: o.clone(), seminorm: false };
        per_sample_gradients(f, &sol, ts, &ybar, dim, method, o, &a).unwrap().1
    }
}

fn fmt(s: &Stats) -> String {
    format!("acc {} rej {} nfe {} nvjp {}", s.accepted, s.rejected, s.nfe, s.nvjp)
}

const ADAPTIVE: [&Tableau; 4] = [&BOSH3, &DOPRI5, &TSIT5, &DOPRI8];
const TOLS: [(f64, f64); 2] = [(1e-3, 1e-6), (1e-8, 1e-10)];

fn vdp(_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
    let mu = 2.0;
    dy[0] = y[1];
    dy[1] = mu * (1.0 - y[0] * y[0]) * y[1] - y[0];
}

fn forced(t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
    // A kink at t = 1: the tstop keeps steps from crossing it.
    let g = if t < 1.0 { 1.0 } else { -0.5 };
    dy[0] = g * t.cos() * y[0];
}

fn snapshot() -> String {
    let mut out = String::new();
    let mlp_y0 = [0.5, -0.3, 1.5, 0.2, -0.01, 0.02];
    let mlp_ts = [0.0, 0.4, 1.1, 2.0];
    let mut mlp = Mlp::new(2, 16, weights(2, 16, 7)).unwrap();
    for (rtol, atol) in TOLS {
        for tab in ADAPTIVE {
            let o = SolveOptions::new(tab).with_tol(rtol, atol);
            let name = tab.name;
            let mut f = FnDynamics(vdp);
            writeln!(out, "joint vdp {name} rtol {rtol:e}: {}", fmt(&api::joint(&mut f, &[2.0, 0.0], &[0.0, 1.0, 3.0, 6.0], &o))).unwrap();
            let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = -y[0]);
            writeln!(out, "joint decay {name} rtol {rtol:e}: {}", fmt(&api::joint(&mut f, &[1.0], &[0.0, 0.5, 2.0], &o))).unwrap();
            let mut f = FnDynamics(forced);
            let ot = o.clone().with_tstops(vec![1.0]);
            writeln!(out, "joint forced+tstop {name} rtol {rtol:e}: {}", fmt(&api::joint(&mut f, &[1.0], &[0.0, 0.5, 3.0], &ot))).unwrap();
            let rev = [2.0, 1.3, 0.0];
            writeln!(out, "joint mlp reverse-time {name} rtol {rtol:e}: {}", fmt(&api::joint(&mut mlp, &mlp_y0, &rev, &o))).unwrap();
            let mut f = FnDynamics(vdp);
            writeln!(out, "dense vdp {name} rtol {rtol:e}: {}", fmt(&api::dense(&mut f, &[2.0, 0.0], &[0.0, 1.0, 3.0, 6.0], &o))).unwrap();
            for c in [("pi", PidController::pi()), ("pid", PidController::pid())] {
                let oc = o.clone().with_controller(c.1);
                let mut f = FnDynamics(vdp);
                writeln!(out, "joint vdp {name} {} rtol {rtol:e}: {}", c.0, fmt(&api::joint(&mut f, &[2.0, 0.0], &[0.0, 6.0], &oc)))
                    .unwrap();
            }
            let of = o.clone().with_first_step(0.05);
            let mut f = FnDynamics(vdp);
            writeln!(out, "joint vdp {name} first_step rtol {rtol:e}: {}", fmt(&api::joint(&mut f, &[2.0, 0.0], &[0.0, 6.0], &of)))
                .unwrap();
            for (g, label) in [
                (GradMethod::Backprop, "backprop"),
                (GradMethod::Checkpoint(Some(3)), "checkpoint:3"),
                (GradMethod::Adjoint, "adjoint"),
                (GradMethod::AdjointCheckpointed(Some(3)), "adjoint-checkpointed:3"),
            ] {
                let (fw, bw) = api::joint_grad(&mut mlp, &mlp_y0, &mlp_ts, &o, g, false);
                writeln!(out, "grad mlp {name} {label} rtol {rtol:e}: forward {} backward {}", fmt(&fw), fmt(&bw)).unwrap();
            }
            let (fw, bw) = api::joint_grad(&mut mlp, &mlp_y0, &mlp_ts, &o, GradMethod::Adjoint, true);
            writeln!(out, "grad mlp {name} adjoint+seminorm rtol {rtol:e}: forward {} backward {}", fmt(&fw), fmt(&bw)).unwrap();
            // Per-sample: rows of very different scales, each on its own grid.
            let grids: Vec<Vec<f64>> = (0..3).map(|r| vec![0.0, 0.3 + 0.2 * r as f64, 1.0 + 0.5 * r as f64]).collect();
            let (rs, calls, re) = api::rows(&mut mlp, &mlp_y0, 2, &grids, &o);
            let rows: Vec<String> = rs.iter().map(fmt).collect();
            writeln!(out, "rows mlp {name} rtol {rtol:e}: calls {calls} row_evals {re} | {}", rows.join(" | ")).unwrap();
            for (g, label) in [
                (GradMethod::Backprop, "backprop"),
                (GradMethod::Checkpoint(Some(2)), "checkpoint:2"),
                (GradMethod::Adjoint, "adjoint"),
                (GradMethod::AdjointCheckpointed(Some(2)), "adjoint-checkpointed:2"),
            ] {
                let bs: Vec<String> = api::rows_grad(&mut mlp, &mlp_y0, 2, &grids, &o, g).iter().map(fmt).collect();
                writeln!(out, "rows grad mlp {name} {label} rtol {rtol:e}: {}", bs.join(" | ")).unwrap();
            }
        }
    }
    for tab in METHODS {
        let o = SolveOptions::new(tab).with_fixed_step(0.15);
        let name = tab.name;
        let mut f = FnDynamics(vdp);
        writeln!(out, "fixed vdp {name}: {}", fmt(&api::joint(&mut f, &[2.0, 0.0], &[0.0, 0.7, 3.0], &o))).unwrap();
        let mut f = FnDynamics(vdp);
        writeln!(out, "fixed dense vdp {name}: {}", fmt(&api::dense(&mut f, &[2.0, 0.0], &[0.0, 0.7, 3.0], &o))).unwrap();
        let grids: Vec<Vec<f64>> = (0..3).map(|r| vec![0.0, 0.5, 1.0 + 0.4 * r as f64]).collect();
        let (rs, calls, re) = api::rows(&mut mlp, &mlp_y0, 2, &grids, &o);
        let rows: Vec<String> = rs.iter().map(fmt).collect();
        writeln!(out, "fixed rows mlp {name}: calls {calls} row_evals {re} | {}", rows.join(" | ")).unwrap();
        for (g, label) in [(GradMethod::Backprop, "backprop"), (GradMethod::Checkpoint(Some(4)), "checkpoint:4")] {
            let (fw, bw) = api::joint_grad(&mut mlp, &mlp_y0, &mlp_ts, &o, g, false);
            writeln!(out, "fixed grad mlp {name} {label}: forward {} backward {}", fmt(&fw), fmt(&bw)).unwrap();
        }
        let bs: Vec<String> = api::rows_grad(&mut mlp, &mlp_y0, 2, &grids, &o, GradMethod::Backprop).iter().map(fmt).collect();
        writeln!(out, "fixed rows grad mlp {name} backprop: {}", bs.join(" | ")).unwrap();
    }
    out
}

#[test]
fn step_counts_match_the_snapshot() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/step_counts.txt");
    let got = snapshot();
    if std::env::var_os("NODAL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).expect("tests/snapshots/step_counts.txt exists (NODAL_BLESS=1 writes it)");
    let diff: Vec<String> = want.lines().zip(got.lines()).filter(|(a, b)| a != b).map(|(a, b)| format!("  want {a}\n  got  {b}")).collect();
    assert!(diff.is_empty() && want.lines().count() == got.lines().count(), "step counts changed:\n{}", diff.join("\n"));
}
