//! Per-sample mode: each row equals the same row solved alone (solution and gradients), rows
//! that need fewer steps stop costing evaluations, and a bad row fails alone.

mod common;
use common::weights;

use nodal_solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal_solve::mlp::Mlp;
use nodal_solve::per_sample::{FnRows, per_sample_gradients, solve_per_sample};
use nodal_solve::tableau::{DOPRI5, ErrorEstimator, TSIT5};
use nodal_solve::{METHODS, Record, RmsNorm, SolveError, SolveOptions, Tableau, solve, solve_recorded};
use proptest::prelude::*;

fn rel_close(a: &[f64], b: &[f64], tol: f64) -> bool {
    let scale = b.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * scale)
}

/// Options for method `m` of [`METHODS`]: adaptive where the method has an error estimate and
/// order 3 or more (optionally with a given first step), fixed steps of 0.05 otherwise (a
/// second-order pair at these tolerances would take thousands of steps).
fn options_for(m: usize, first_step: bool) -> SolveOptions {
    let tab: &'static Tableau = METHODS[m];
    let o = SolveOptions::new(tab);
    if matches!(tab.error, ErrorEstimator::None) || tab.order < 3 {
        o.with_fixed_step(0.05)
    } else if first_step {
        o.with_tol(1e-7, 1e-9).with_first_step(0.01)
    } else {
        o.with_tol(1e-7, 1e-9)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn each_row_equals_the_row_solved_alone(
        rows in prop::collection::vec((-2.0f64..1.0, -1.0f64..1.0, -1.0f64..1.0), 1..6),
        seed in 0u64..1000,
        method in 0usize..METHODS.len(),
        first_step in any::<bool>(),
        grad in 0usize..3,
    ) {
        let opts = options_for(method, first_step);
        let tab = opts.method;
        let grad = [GradMethod::Backprop, GradMethod::Checkpoint(Some(3)), GradMethod::Adjoint][grad];
        let (dim, hidden) = (2, 16);
        let mut mlp = Mlp::new(dim, hidden, weights(dim, hidden, seed)).unwrap();
        let y0: Vec<f64> = rows.iter().flat_map(|(s, a, b)| [10f64.powf(*s) * a, 10f64.powf(*s) * b]).collect();
        let batch = rows.len();
        // Different grids per row, with interior outputs (dense output in both modes).
        let ts: Vec<Vec<f64>> = (0..batch).map(|r| vec![0.0, 0.37 + 0.1 * r as f64, 1.3 + 0.2 * r as f64]).collect();
        let sol = solve_per_sample(&mut mlp, &y0, dim, &ts, &opts, grad.record(&ts[0], opts.step)).unwrap();
        let ybar: Vec<Vec<f64>> = sol.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
        let aopts = AdjointOptions { solve: opts.clone(), seminorm: false };
        let (g, _) = per_sample_gradients(&mut mlp, &sol, &ts, &ybar, dim, grad, &opts, &aopts).unwrap();
        let mut gp_sum = vec![0.0; g.params.len()];
        for r in 0..batch {
            prop_assert!(sol.row_status[r].is_none());
            let yr = y0[r * dim..(r + 1) * dim].to_vec();
            let (alone, backward) = solve_for_gradients(&mut mlp, &yr, &ts[r], &opts, &RmsNorm, grad).unwrap();
            for (k, y) in alone.ys.iter().enumerate() {
                prop_assert!(rel_close(&sol.ys[k][r * dim..(r + 1) * dim], y, 1e-12), "{} row {} output {}", tab.name, r, k);
            }
            prop_assert_eq!(sol.row_stats[r].accepted, alone.stats.accepted);
            prop_assert_eq!(sol.row_stats[r].rejected, alone.stats.rejected);
            let rb: Vec<Vec<f64>> = alone.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
            let ga = backward.gradients(&mut mlp, &ts[r], &alone.ys, &rb, &aopts, false).unwrap();
            prop_assert!(rel_close(&g.y0[r * dim..(r + 1) * dim], &ga.y0, 1e-10));
            for (a, b) in gp_sum.iter_mut().zip(&ga.params) { *a += b; }
        }
        prop_assert!(rel_close(&g.params, &gp_sum, 1e-10));
    }
}

#[test]
fn a_given_first_step_costs_no_estimate_in_either_mode() {
    let (dim, hidden) = (2, 8);
    let mut mlp = Mlp::new(dim, hidden, weights(dim, hidden, 5)).unwrap();
    let y0 = vec![0.5, -0.2];
    let ts = vec![vec![0.0, 1.0]];
    let base = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-8);
    for opts in [base.clone(), base.clone().with_first_step(0.02)] {
        let ps = solve_per_sample(&mut mlp, &y0, dim, &ts, &opts, Record::None).unwrap();
        let alone = solve(&mut mlp, &y0, &ts[0], &opts, &RmsNorm).unwrap();
        // One row, no interior outputs: every evaluation is the same in both modes.
        assert_eq!(ps.row_stats[0], alone.stats, "first_step {:?}", opts.first_step);
    }
}

#[test]
fn rows_at_different_scales_cost_fewer_row_evaluations_than_joint_mode() {
    let (dim, hidden) = (2, 32);
    let mut mlp = Mlp::new(dim, hidden, weights(dim, hidden, 7)).unwrap();
    // One row far out (hard), seven near the origin (easy).
    let mut y0 = vec![8.0, -6.0];
    for i in 0..7 {
        y0.extend([0.01 * i as f64, -0.02]);
    }
    let batch = y0.len() / dim;
    let ts = vec![vec![0.0, 5.0]; batch];
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-8);
    let ps = solve_per_sample(&mut mlp, &y0, dim, &ts, &opts, Record::None).unwrap();
    let joint = solve_recorded(&mut mlp, &y0, &ts[0], &opts, &RmsNorm, Record::None).unwrap().0;
    let joint_row_evals = joint.stats.nfe * batch;
    assert!(ps.row_evaluations < joint_row_evals, "per-sample {} vs joint {}", ps.row_evaluations, joint_row_evals);
    let sum: usize = ps.row_stats.iter().map(|s| s.nfe).sum();
    assert_eq!(sum, ps.row_evaluations, "per-row counts add up to the total");
    // The easy rows took fewer evaluations than the hard one.
    assert!(ps.row_stats[1].nfe < ps.row_stats[0].nfe);
}

#[test]
fn a_nan_row_fails_alone() {
    let (dim, hidden) = (2, 8);
    let mut mlp = Mlp::new(dim, hidden, weights(dim, hidden, 3)).unwrap();
    let y0 = vec![0.5, 0.1, f64::NAN, 1.0, -0.3, 0.2];
    let ts = vec![vec![0.0, 1.0, 2.0]; 3];
    let opts = SolveOptions::new(&DOPRI5);
    let ps = solve_per_sample(&mut mlp, &y0, dim, &ts, &opts, Record::None).unwrap();
    assert!(matches!(ps.row_status[1], Some(SolveError::NonFinite { what: "initial state", .. })));
    assert!(ps.row_status[0].is_none() && ps.row_status[2].is_none());
    for k in 0..3 {
        assert!(ps.ys[k][2].is_nan() && ps.ys[k][3].is_nan());
    }
    for r in [0, 2] {
        let alone = solve_recorded(&mut mlp, &y0[r * 2..r * 2 + 2].to_vec(), &ts[r], &opts, &RmsNorm, Record::None).unwrap().0;
        assert!(rel_close(&ps.ys[2][r * 2..r * 2 + 2], &alone.ys[2], 1e-12));
    }
}

#[test]
fn a_blowing_up_row_reports_its_time_and_keeps_its_partial_outputs() {
    // y' = y^2 per row: y0 = 1 blows up at t = 1; y0 = -1 gives -1/(1 + t).
    let mut f = FnRows(|_t: &[f64], y: &[f64], dy: &mut [f64]| {
        for (d, v) in dy.iter_mut().zip(y) {
            *d = v * v;
        }
    });
    let ts = vec![vec![0.0, 0.5, 2.0], vec![0.0, 0.5, 2.0]];
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-8, 1e-10);
    let ps = solve_per_sample(&mut f, &[1.0, -1.0], 1, &ts, &opts, Record::None).unwrap();
    let t = match ps.row_status[0] {
        Some(SolveError::StepSizeUnderflow { t, .. })
        | Some(SolveError::NonFinite { t, .. })
        | Some(SolveError::MaxStepsExceeded { t, .. }) => t,
        ref other => panic!("unexpected {other:?}"),
    };
    assert!((t - 1.0).abs() < 1e-2);
    assert!((ps.ys[1][0] - 2.0).abs() < 1e-6, "partial output kept");
    assert!(ps.ys[2][0].is_nan());
    assert!(ps.row_status[1].is_none());
    assert!((ps.ys[2][1] + 1.0 / 3.0).abs() < 1e-7);
}

#[test]
fn rows_can_have_their_own_spans() {
    let mut f = FnRows(|_t: &[f64], y: &[f64], dy: &mut [f64]| {
        for (d, v) in dy.iter_mut().zip(y) {
            *d = -v;
        }
    });
    let ts = vec![vec![0.0, 1.0], vec![2.0, 0.0], vec![0.0, 3.0]];
    let opts = SolveOptions::new(&TSIT5).with_tol(1e-10, 1e-12);
    let ps = solve_per_sample(&mut f, &[1.0, 1.0, 2.0], 1, &ts, &opts, Record::None).unwrap();
    assert!((ps.ys[1][0] - (-1.0f64).exp()).abs() < 1e-8);
    assert!((ps.ys[1][1] - 2.0f64.exp()).abs() < 1e-7, "reverse-time row");
    assert!((ps.ys[1][2] - 2.0 * (-3.0f64).exp()).abs() < 1e-8);
}

#[test]
fn per_sample_penalties_equal_each_row_regularised_alone() {
    use nodal_solve::regularise::{Penalty, Regularised};
    let (dim, hidden) = (2, 8);
    let pens = [Penalty::Kinetic, Penalty::JacobianFrobenius { probes: 2 }, Penalty::Order2];
    let y0 = [0.4, -0.3, 1.2, 0.5, -0.05, 0.02];
    let ts = vec![vec![0.0, 0.6, 1.5]; 3];
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-7, 1e-9);
    let mut reg = Regularised::new(Mlp::new(dim, hidden, weights(dim, hidden, 11)).unwrap(), dim, &pens, 5).unwrap();
    let w = dim + pens.len();
    let aug: Vec<f64> = y0.chunks(dim).flat_map(|row| reg.augment(row)).collect();
    let ps = solve_per_sample(&mut reg, &aug, w, &ts, &opts, Record::Every(1)).unwrap();
    let ybar: Vec<Vec<f64>> = ps.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
    let aopts = AdjointOptions { solve: opts.clone(), seminorm: false };
    let (g, _) = per_sample_gradients(&mut reg, &ps, &ts, &ybar, w, GradMethod::Backprop, &opts, &aopts).unwrap();
    let mut gp = vec![0.0; g.params.len()];
    for r in 0..3 {
        let alone_y0 = reg.augment(&y0[r * dim..(r + 1) * dim]);
        let (alone, backward) = solve_for_gradients(&mut reg, &alone_y0, &ts[r], &opts, &RmsNorm, GradMethod::Backprop).unwrap();
        for k in 0..3 {
            assert!(rel_close(&ps.ys[k][r * w..(r + 1) * w], &alone.ys[k], 1e-12), "row {r} output {k}");
        }
        assert_eq!((ps.row_stats[r].accepted, ps.row_stats[r].rejected), (alone.stats.accepted, alone.stats.rejected));
        // The accumulators really integrate something.
        assert!(reg.values(&alone.ys[2]).iter().all(|&v| v > 0.0));
        let rb: Vec<Vec<f64>> = alone.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
        let ga = backward.gradients(&mut reg, &ts[r], &alone.ys, &rb, &aopts, false).unwrap();
        assert!(rel_close(&g.y0[r * w..(r + 1) * w], &ga.y0, 1e-10));
        gp.iter_mut().zip(&ga.params).for_each(|(a, b)| *a += b);
    }
    assert!(rel_close(&g.params, &gp, 1e-10));
}

#[test]
fn a_prefix_seminorm_lets_trailing_components_not_steer_the_steps() {
    use nodal_solve::per_sample::{PrefixNorm, solve_per_sample_with};
    // Row [y, q]: y' = -y, q' = 1e4 sin(40 t) y (a fast, large accumulator).
    let mut f = FnRows(|t: &[f64], y: &[f64], dy: &mut [f64]| {
        for (r, &tr) in t.iter().enumerate() {
            dy[2 * r] = -y[2 * r];
            dy[2 * r + 1] = 1e4 * (40.0 * tr).sin() * y[2 * r];
        }
    });
    let mut plain = FnRows(|_t: &[f64], y: &[f64], dy: &mut [f64]| dy.iter_mut().zip(y).for_each(|(d, v)| *d = -v));
    let ts = vec![vec![0.0, 2.0]; 2];
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-8);
    let semi = solve_per_sample_with(&mut f, PrefixNorm(1), &[1.0, 0.0, 0.5, 0.0], 2, &ts, &opts, Record::None).unwrap();
    let full = solve_per_sample(&mut f, &[1.0, 0.0, 0.5, 0.0], 2, &ts, &opts, Record::None).unwrap();
    let alone = solve_per_sample(&mut plain, &[1.0, 0.5], 1, &ts, &opts, Record::None).unwrap();
    for r in 0..2 {
        assert_eq!(semi.row_stats[r].accepted, alone.row_stats[r].accepted, "row {r}: the seminorm ignores q");
        assert!(full.row_stats[r].accepted > 2 * semi.row_stats[r].accepted, "row {r}: the full norm is steered by q");
    }
    assert!((semi.ys[1][0] - (-2.0f64).exp()).abs() < 1e-6);
}
