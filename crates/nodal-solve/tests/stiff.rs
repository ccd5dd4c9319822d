//! Implicit methods: convergence orders, the stiff test set against its reference values,
//! explicit methods' failure on it, per-row solving, and typed failures.

use nodal_solve::stiff_problems::{HIRES, OREGO, ROBERTSON, STIFF_PROBLEMS, StiffProblem, VDP1000};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{FnDynamics, ImplicitMethod, ImplicitSettings, LinearSolver, RmsNorm, SolveError, SolveOptions, solve};

fn run(p: &StiffProblem, opts: &SolveOptions) -> Result<nodal_solve::Solution<Vec<f64>>, SolveError> {
    let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| (p.f)(t, y, dy));
    solve(&mut f, &p.y0.to_vec(), &[0.0, p.t_end], opts, &RmsNorm).map_err(|e| e.error)
}

/// Observed order of a fixed-step method on `y' = -y^2 + cos t - sin t ...`: two nonlinear
/// problems with closed forms, errors at h = 0.2, 0.1, 0.05; the slope of log(error) must be
/// within 0.35 of the method's order.
#[test]
fn implicit_methods_converge_at_their_order() {
    // (a) y' = -y^2, y(0) = 1: y = 1 / (1 + t). (b) non-autonomous, tests f_t in Rosenbrock:
    // y' = -2 (y - sin t) + cos t, y(0) = 1: y = sin t + e^{-2t}.
    type Rhs = fn(f64, &[f64], &mut [f64]);
    let cases: [(Rhs, fn(f64) -> f64, f64); 2] = [
        (|_t, y, dy| dy[0] = -y[0] * y[0], |t| 1.0 / (1.0 + t), 1.0),
        (|t, y, dy| dy[0] = -2.0 * (y[0] - t.sin()) + t.cos(), |t| t.sin() + (-2.0 * t).exp(), 1.0),
    ];
    for method in ImplicitMethod::ALL {
        for (ci, (rhs, exact, y0)) in cases.iter().enumerate() {
            let t1 = 2.0;
            let errs: Vec<f64> = [0.2, 0.1, 0.05]
                .iter()
                .map(|&h| {
                    let settings = ImplicitSettings { newton_tol: 1e-6, ..ImplicitSettings::default() };
                    let opts = SolveOptions::new(&DOPRI5)
                        .with_implicit(method)
                        .with_implicit_settings(settings)
                        .with_tol(1e-13, 1e-13)
                        .with_fixed_step(h);
                    let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| rhs(t, y, dy));
                    let sol = solve(&mut f, &vec![*y0], &[0.0, t1], &opts, &RmsNorm).unwrap();
                    (sol.ys[1][0] - exact(t1)).abs()
                })
                .collect();
            let slopes: Vec<f64> = errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
            let p = method.order() as f64;
            assert!(slopes.iter().all(|s| (s - p).abs() < 0.35), "{} case {ci}: errors {errs:?}, slopes {slopes:?}", method.name());
        }
    }
}

/// The stiff set at rtol 1e-6, atol 1e-10 (Robertson atol 1e-14, its y2 is 1e-13): every
/// implicit method ends within 100 x rtol of the reference (global error is not bounded by the
/// local tolerance; this is the accuracy scipy's Radau and diffrax's Kvaerno5 reach at the same
/// settings, see docs/stiff.md), with a bounded number of steps.
#[test]
fn stiff_test_set_matches_references() {
    for p in STIFF_PROBLEMS {
        let atol = if p.name == "robertson" { 1e-14 } else { 1e-10 };
        for method in ImplicitMethod::ALL {
            let opts = SolveOptions::new(&DOPRI5).with_implicit(method).with_tol(1e-6, atol).with_max_steps(100_000);
            let sol = run(&p, &opts).unwrap_or_else(|e| panic!("{} {}: {e}", p.name, method.name()));
            let err = p.error(&sol.ys[1], atol);
            eprintln!("{} {}: error {err:.2e}, stats {:?}", p.name, method.name(), sol.stats);
            assert!(err < 1e-4, "{} {}: error {err:.3e}, y {:?}", p.name, method.name(), sol.ys[1]);
        }
    }
}

/// Tighter tolerance gives a smaller error (the solvers converge to the reference).
#[test]
fn tighter_tolerances_reach_the_references_closer() {
    for p in [HIRES, OREGO, ROBERTSON, VDP1000] {
        let atol = if p.name == "robertson" { 1e-16 } else { 1e-12 };
        for method in [ImplicitMethod::Kvaerno5, ImplicitMethod::Rodas5] {
            let opts = SolveOptions::new(&DOPRI5).with_implicit(method).with_tol(1e-9, atol).with_max_steps(200_000);
            let sol = run(&p, &opts).unwrap();
            let err = p.error(&sol.ys[1], atol);
            assert!(err < 1e-6, "{} {}: error {err:.3e}", p.name, method.name());
        }
    }
}

/// An explicit method on Robertson runs out of steps: a typed error, not a hang.
#[test]
fn explicit_methods_run_out_of_steps_on_stiff_problems() {
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-10).with_max_steps(20_000);
    match run(&ROBERTSON, &opts) {
        Err(SolveError::MaxStepsExceeded { t, .. }) => assert!(t < 1e3, "reached t = {t}"),
        other => panic!("expected MaxStepsExceeded, got {other:?}"),
    }
}

/// Matrix-free Newton-Krylov gives the dense solver's answer on the stiff set.
#[test]
fn krylov_matches_dense_linear_algebra() {
    for p in [HIRES, OREGO, VDP1000] {
        let dense = SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Kvaerno5).with_tol(1e-8, 1e-10).with_max_steps(100_000);
        let krylov = dense.clone().with_implicit_settings(ImplicitSettings {
            linear: LinearSolver::Krylov { restart: 10, max_iterations: 100, tolerance: 1e-9 },
            ..ImplicitSettings::default()
        });
        let a = run(&p, &dense).unwrap();
        let b = run(&p, &krylov).unwrap();
        assert!(b.stats.linear_iterations > 0 && b.stats.jacobians == 0 && a.stats.jacobians > 0);
        for (x, y) in a.ys[1].iter().zip(&b.ys[1]) {
            assert!((x - y).abs() <= 1e-5 * (x.abs() + 1e-8), "{}: dense {:?} vs krylov {:?}", p.name, a.ys[1], b.ys[1]);
        }
    }
}

/// A fixed step whose Newton iteration cannot converge is a typed failure that says why:
/// `y' = y^2` from `y(0) = 1` blows up at `t = 1`; a step of 2 has no stage solution.
#[test]
fn newton_failure_is_a_typed_error() {
    let opts = SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Kvaerno5).with_fixed_step(2.0);
    let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = y[0] * y[0]);
    let err = solve(&mut f, &vec![1.0], &[0.0, 4.0], &opts, &RmsNorm).unwrap_err().error;
    match &err {
        SolveError::ImplicitStep { t, reason, .. } => assert!(*t == 0.0 && reason.contains("Newton"), "{err}"),
        other => panic!("expected ImplicitStep, got {other:?}"),
    }
}
