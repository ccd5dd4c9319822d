//! Every failure is a typed error with its context and the partial solution, never a panic or
//! a hang.

use nodal_solve::tableau::{DOPRI5, EULER, RK4, TSIT5};
use nodal_solve::{FnDynamics, RmsNorm, SolveError, SolveOptions, solve};

type V = Vec<f64>;

#[test]
fn blow_up_of_y_squared_is_reported_near_t_one() {
    // y' = y^2, y(0) = 1 has y = 1/(1 - t): no solution past t = 1.
    for tab in [&DOPRI5, &TSIT5] {
        let opts = SolveOptions::new(tab).with_tol(1e-6, 1e-8);
        let mut f = FnDynamics(|_t: f64, y: &V, dy: &mut V| dy[0] = y[0] * y[0]);
        let fail = solve(&mut f, &vec![1.0], &[0.0, 0.5, 2.0], &opts, &RmsNorm).unwrap_err();
        let t = match fail.error {
            SolveError::StepSizeUnderflow { t, .. } | SolveError::NonFinite { t, .. } | SolveError::MaxStepsExceeded { t, .. } => t,
            ref e => panic!("unexpected error {e}"),
        };
        assert!((t - 1.0).abs() < 1e-2, "{}: failed at t = {t}", tab.name);
        // The output at t = 0.5 was reached and is kept.
        assert_eq!(fail.partial.ys.len(), 2);
        assert!((fail.partial.ys[1][0] - 2.0).abs() < 1e-5);
        // The message names the time of failure and how many outputs survive.
        let msg = fail.to_string();
        assert!(msg.contains(&format!("t = {t:e}")) && msg.contains("2 of the requested outputs computed"), "{msg}");
    }
}

#[test]
fn nan_dynamics_give_a_non_finite_error() {
    let opts = SolveOptions::new(&DOPRI5);
    let mut f = FnDynamics(|t: f64, y: &V, dy: &mut V| dy[0] = if t > 0.3 { f64::NAN } else { -y[0] });
    let fail = solve(&mut f, &vec![1.0], &[0.0, 1.0], &opts, &RmsNorm).unwrap_err();
    assert!(matches!(fail.error, SolveError::NonFinite { .. }), "{}", fail.error);
    let mut g = FnDynamics(|_t: f64, _y: &V, dy: &mut V| dy[0] = f64::NAN);
    let fail = solve(&mut g, &vec![1.0], &[0.0, 1.0], &opts, &RmsNorm).unwrap_err();
    assert!(matches!(fail.error, SolveError::NonFinite { what: "derivative", .. }));
    let fixed = SolveOptions::new(&RK4).with_fixed_step(0.1);
    let fail = solve(&mut f, &vec![1.0], &[0.0, 1.0], &fixed, &RmsNorm).unwrap_err();
    assert!(matches!(fail.error, SolveError::NonFinite { .. }));
    let fail =
        solve(&mut FnDynamics(|_t: f64, y: &V, dy: &mut V| dy[0] = y[0]), &vec![f64::NAN], &[0.0, 1.0], &opts, &RmsNorm).unwrap_err();
    assert!(matches!(fail.error, SolveError::NonFinite { what: "initial state", .. }));
}

#[test]
fn invalid_inputs_are_rejected_with_reasons() {
    let mut f = FnDynamics(|_t: f64, y: &V, dy: &mut V| dy[0] = -y[0]);
    let y0 = vec![1.0];
    let ok = SolveOptions::new(&DOPRI5);
    let err = |ts: &[f64], o: &SolveOptions, f: &mut FnDynamics<_>| solve(f, &y0, ts, o, &RmsNorm).unwrap_err().error;
    assert!(matches!(err(&[], &ok, &mut f), SolveError::InvalidTimes(_)));
    assert!(matches!(err(&[0.0, 1.0, 1.0], &ok, &mut f), SolveError::InvalidTimes(_)));
    assert!(matches!(err(&[0.0, 2.0, 1.0], &ok, &mut f), SolveError::InvalidTimes(_)));
    assert!(matches!(err(&[0.0, f64::NAN], &ok, &mut f), SolveError::InvalidTimes(_)));
    assert!(matches!(err(&[0.0, 1.0], &ok.clone().with_tol(-1.0, 1e-6), &mut f), SolveError::InvalidTolerance { .. }));
    assert!(matches!(err(&[0.0, 1.0], &ok.clone().with_tol(0.0, 0.0), &mut f), SolveError::InvalidTolerance { .. }));
    assert!(matches!(err(&[0.0, 1.0], &SolveOptions::new(&EULER), &mut f), SolveError::InvalidStep(_)));
    assert!(matches!(err(&[0.0, 1.0], &SolveOptions::new(&RK4).with_fixed_step(0.0), &mut f), SolveError::InvalidStep(_)));
    assert!(matches!(err(&[0.0, 1.0], &SolveOptions::new(&RK4).with_fixed_step(f64::NAN), &mut f), SolveError::InvalidStep(_)));
}

#[test]
fn max_steps_stops_the_solve() {
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-12, 1e-12).with_max_steps(5);
    let mut f = FnDynamics(|t: f64, y: &V, dy: &mut V| dy[0] = y[0] * (10.0 * t).cos());
    let fail = solve(&mut f, &vec![1.0], &[0.0, 100.0], &opts, &RmsNorm).unwrap_err();
    assert!(matches!(fail.error, SolveError::MaxStepsExceeded { max_steps: 5, .. }));
    assert_eq!(fail.partial.stats.steps(), 5);
}

#[test]
fn a_single_output_time_returns_the_initial_state() {
    let mut f = FnDynamics(|_t: f64, y: &V, dy: &mut V| dy[0] = -y[0]);
    let sol = solve(&mut f, &vec![3.0], &[1.0], &SolveOptions::new(&DOPRI5), &RmsNorm).unwrap();
    assert_eq!(sol.ys, vec![vec![3.0]]);
    assert_eq!(sol.stats.nfe, 0);
}
