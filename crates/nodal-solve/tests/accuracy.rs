//! Accuracy of the adaptive solvers against independent references: closed forms (DETEST A1-A4,
//! the Kepler orbit of DETEST class D, the Arenstorf orbit's period), high-precision solutions
//! (Van der Pol mu = 1, Lotka-Volterra: mpmath's Taylor-series `odefun` at 30 digits, tolerance
//! 1e-25), and reverse-time round trips.

use nodal_solve::tableau::{BOSH3, DOPRI5, DOPRI8, TSIT5};
use nodal_solve::{FnDynamics, PidController, RmsNorm, SolveOptions, Tableau, solve, solve_dense};

type V = Vec<f64>;

fn run(tab: &'static Tableau, rtol: f64, f: impl FnMut(f64, &V, &mut V), y0: V, ts: &[f64]) -> Vec<V> {
    let opts = SolveOptions::new(tab).with_tol(rtol, rtol * 1e-2).with_max_steps(200_000);
    solve(&mut FnDynamics(f), &y0, ts, &opts, &RmsNorm).unwrap().ys
}

const ADAPTIVE: [&Tableau; 4] = [&BOSH3, &DOPRI5, &TSIT5, &DOPRI8];

/// Achievable accuracy for a tolerance: global error is a modest multiple of rtol.
fn bound(tab: &Tableau, rtol: f64) -> f64 {
    if tab.order <= 3 { 300.0 * rtol } else { 100.0 * rtol }
}

#[test]
fn detest_a_closed_forms() {
    let ts: Vec<f64> = (0..=20).map(|i| i as f64).collect();
    for tab in ADAPTIVE {
        let rtol = if tab.order <= 3 { 1e-7 } else { 1e-10 };
        let b = bound(tab, rtol);
        let ys = run(tab, rtol, |_t, y, dy| dy[0] = -y[0], vec![1.0], &ts);
        for (t, y) in ts.iter().zip(&ys) {
            assert!((y[0] - (-t).exp()).abs() < b, "{} A1 t={t}", tab.name);
        }
        let ys = run(tab, rtol, |_t, y, dy| dy[0] = -0.5 * y[0].powi(3), vec![1.0], &ts);
        for (t, y) in ts.iter().zip(&ys) {
            assert!((y[0] - 1.0 / (1.0 + t).sqrt()).abs() < b, "{} A2 t={t}", tab.name);
        }
        let ys = run(tab, rtol, |t, y, dy| dy[0] = y[0] * t.cos(), vec![1.0], &ts);
        for (t, y) in ts.iter().zip(&ys) {
            assert!((y[0] - t.sin().exp()).abs() < b * 3.0, "{} A3 t={t}", tab.name);
        }
        let ys = run(tab, rtol, |_t, y, dy| dy[0] = 0.25 * y[0] * (1.0 - y[0] / 20.0), vec![1.0], &ts);
        for (t, y) in ts.iter().zip(&ys) {
            let exact = 20.0 / (1.0 + 19.0 * (-t / 4.0).exp());
            assert!((y[0] - exact).abs() < b * 20.0, "{} A4 t={t}", tab.name);
        }
    }
}

/// Kepler orbit with eccentricity 0.1 (DETEST D1 family): closed form through Kepler's equation.
#[test]
fn kepler_orbit_closed_form() {
    let e: f64 = 0.1;
    let y0 = vec![1.0 - e, 0.0, 0.0, ((1.0 + e) / (1.0 - e)).sqrt()];
    let kepler = |t: f64| {
        let mut u = t;
        for _ in 0..50 {
            u -= (u - e * u.sin() - t) / (1.0 - e * u.cos());
        }
        (u.cos() - e, (1.0 - e * e).sqrt() * u.sin())
    };
    let ts: Vec<f64> = (0..=10).map(|i| 2.0 * i as f64).collect();
    for tab in [&DOPRI5, &TSIT5, &DOPRI8] {
        let ys = run(
            tab,
            1e-11,
            |_t, y, dy| {
                let r3 = (y[0] * y[0] + y[1] * y[1]).powf(1.5);
                dy[0] = y[2];
                dy[1] = y[3];
                dy[2] = -y[0] / r3;
                dy[3] = -y[1] / r3;
            },
            y0.clone(),
            &ts,
        );
        for (t, y) in ts.iter().zip(&ys) {
            let (x, yy) = kepler(*t);
            assert!((y[0] - x).abs() < 1e-8 && (y[1] - yy).abs() < 1e-8, "{} t={t}: {:?} vs {x},{yy}", tab.name, y);
        }
    }
}

/// The Arenstorf orbit (restricted three-body problem) is periodic with period
/// T = 17.0652165601579625588917206249 (Hairer, Norsett, Wanner, Solving ODEs I, sec. II.0).
#[test]
fn arenstorf_orbit_returns_after_one_period() {
    let mu = 0.012277471;
    let mup = 1.0 - mu;
    let f = move |_t: f64, y: &V, dy: &mut V| {
        let d1 = ((y[0] + mu).powi(2) + y[1] * y[1]).powf(1.5);
        let d2 = ((y[0] - mup).powi(2) + y[1] * y[1]).powf(1.5);
        dy[0] = y[2];
        dy[1] = y[3];
        dy[2] = y[0] + 2.0 * y[3] - mup * (y[0] + mu) / d1 - mu * (y[0] - mup) / d2;
        dy[3] = y[1] - 2.0 * y[2] - mup * y[1] / d1 - mu * y[1] / d2;
    };
    let y0 = vec![0.994, 0.0, 0.0, -2.00158510637908252240537862224];
    let period = 17.0652165601579625588917206249;
    for (tab, rtol, tol) in [(&DOPRI5, 1e-12, 2e-5), (&TSIT5, 1e-12, 2e-5), (&DOPRI8, 1e-13, 2e-6)] {
        let ys = run(tab, rtol, f, y0.clone(), &[0.0, period]);
        let err = (ys[1][0] - y0[0]).abs().max(ys[1][1].abs());
        assert!(err < tol, "{}: Arenstorf position error {err}", tab.name);
    }
}

#[test]
fn van_der_pol_and_lotka_volterra_high_precision() {
    let vdp = |_t: f64, y: &V, dy: &mut V| {
        dy[0] = y[1];
        dy[1] = (1.0 - y[0] * y[0]) * y[1] - y[0];
    };
    let vdp_ref = [
        (1.0, 1.5081442369756089432, -0.78021807462969490624),
        (5.0, -0.83707745029476505057, 1.307088937799671841),
        (10.0, -2.0083407825797123328, 0.032907065863324064431),
    ];
    let lv = |_t: f64, y: &V, dy: &mut V| {
        dy[0] = 1.5 * y[0] - y[0] * y[1];
        dy[1] = -3.0 * y[1] + y[0] * y[1];
    };
    let lv_ref = [
        (1.0, 2.7728509018411121191, 0.2587108781425639539),
        (5.0, 6.098494675971742818, 0.62813790218746090317),
        (10.0, 1.0263447675750893191, 0.90969107813604161755),
    ];
    for tab in ADAPTIVE {
        let rtol = if tab.order <= 3 { 1e-8 } else { 1e-11 };
        for (f, y0, refs) in [(&vdp as &dyn Fn(f64, &V, &mut V), vec![2.0, 0.0], &vdp_ref), (&lv, vec![1.0, 1.0], &lv_ref)] {
            let ts = [0.0, refs[0].0, refs[1].0, refs[2].0];
            let ys = run(tab, rtol, |t, y, dy| f(t, y, dy), y0, &ts);
            for (k, r) in refs.iter().enumerate() {
                let err = (ys[k + 1][0] - r.1).abs().max((ys[k + 1][1] - r.2).abs());
                assert!(err < 2000.0 * rtol, "{} t={}: error {err}", tab.name, r.0);
            }
        }
    }
}

#[test]
fn reverse_time_round_trip() {
    let f = |_t: f64, y: &V, dy: &mut V| {
        dy[0] = y[1];
        dy[1] = -y[0] + 0.1 * (1.0 - y[0] * y[0]) * y[1];
    };
    for tab in ADAPTIVE {
        let rtol = 1e-10;
        let fwd = run(tab, rtol, f, vec![1.0, 0.5], &[0.0, 3.0, 7.0]);
        let back = run(tab, rtol, f, fwd[2].clone(), &[7.0, 3.0, 0.0]);
        for i in 0..2 {
            assert!((back[1][i] - fwd[1][i]).abs() < 1e-6, "{}", tab.name);
            assert!((back[2][i] - [1.0, 0.5][i]).abs() < 1e-6, "{}", tab.name);
        }
    }
}

/// y' = -lam (y - cos t), y(0) = 1: a mildly stiff linear problem whose closed form is
/// y = (lam^2 cos t + lam sin t) / (lam^2 + 1) + exp(-lam t) / (lam^2 + 1).
fn relaxation(lam: f64) -> (impl FnMut(f64, &V, &mut V) + Copy, impl Fn(f64) -> f64) {
    let f = move |t: f64, y: &V, dy: &mut V| dy[0] = -lam * (y[0] - t.cos());
    let exact = move |t: f64| (lam * lam * t.cos() + lam * t.sin() + (-lam * t).exp()) / (lam * lam + 1.0);
    (f, exact)
}

/// Step sizes of every accepted step and the rejected count of one dopri5 solve.
fn step_sequence(c: PidController, rtol: f64, f: impl FnMut(f64, &V, &mut V), y0: V, ts: &[f64]) -> (Vec<f64>, usize, V) {
    let opts = SolveOptions::new(&DOPRI5).with_tol(rtol, rtol * 1e-2).with_controller(c).with_max_steps(100_000);
    let (sol, dense) = solve_dense(&mut FnDynamics(f), &y0, ts, &opts, &RmsNorm).unwrap();
    (dense.steps.iter().map(|s| s.h).collect(), sol.stats.rejected, sol.ys.last().unwrap().clone())
}

/// Once the transient has decayed, explicit steps on `y' = -lam (y - cos t)` are limited by
/// stability, not accuracy: the I controller then alternates between too-large steps (rejected
/// or amplified error) and small ones, while PI and PID control damp that oscillation
/// (Gustafsson 1991; Hairer and Wanner, *Solving ODEs II*, sec. IV.2). The counts are a
/// snapshot of the three step sequences: a change to any controller coefficient moves them.
#[test]
fn pi_and_pid_controllers_take_different_steps_to_the_same_accuracy() {
    let (f, exact) = relaxation(500.0);
    let ts = [0.0, 10.0];
    let mut seen = Vec::new();
    for (name, c) in [("i", PidController::i()), ("pi", PidController::pi()), ("pid", PidController::pid())] {
        let (hs, rejected, y1) = step_sequence(c, 1e-5, f, vec![1.0], &ts);
        assert!((y1[0] - exact(10.0)).abs() < 1e-4, "{name}: error {}", (y1[0] - exact(10.0)).abs());
        // Oscillation of the step sequence after the transient: mean |log(h_{n+1} / h_n)|.
        let tail = &hs[hs.len() / 4..];
        let wiggle = tail.windows(2).map(|w| (w[1] / w[0]).ln().abs()).sum::<f64>() / (tail.len() - 1) as f64;
        eprintln!("{name}: accepted {} rejected {rejected} wiggle {wiggle:.4}", hs.len());
        seen.push((name, hs.len(), rejected, wiggle));
    }
    let counts: Vec<(&str, usize, usize)> = seen.iter().map(|s| (s.0, s.1, s.2)).collect();
    assert_eq!(counts, vec![("i", 1605, 311), ("pi", 1655, 4), ("pid", 1644, 4)], "step counts (accepted, rejected) changed");
    let (i, pi, pid) = (&seen[0], &seen[1], &seen[2]);
    assert!(pi.2 < i.2 && pid.2 < i.2, "PI and PID reject fewer steps than I: {seen:?}");
    assert!(pi.3 < 0.5 * i.3 && pid.3 < 0.5 * i.3, "PI and PID damp the step-size oscillation: {seen:?}");
}

/// The controller's factor against Soderlind's formula written out by hand, for each term.
#[test]
fn pid_factor_follows_the_formula() {
    let k = 5.0;
    let (r0, r1, r2) = (0.5f64, 2.0f64, 0.25f64);
    let c = PidController { pcoeff: 0.3, icoeff: 0.3, dcoeff: 0.1, safety: 0.9, factor_min: 0.2, factor_max: 10.0 };
    let want = 0.9 * r0.powf(-0.7 / k) * r1.powf(0.5 / k) * r2.powf(-0.1 / k);
    assert!((c.factor([r0, r1, r2], 5, true) - want).abs() < 1e-14, "{} vs {want}", c.factor([r0, r1, r2], 5, true));
    // The I controller ignores history; a rejected step never grows, an accepted one never shrinks.
    let i = PidController::i();
    assert_eq!(i.factor([r0, r1, r2], 5, true), i.factor([r0, 1.0, 1.0], 5, true));
    assert!((i.factor([r0, 7.0, 7.0], 5, true) - 0.9 * r0.powf(-1.0 / k)).abs() < 1e-14);
    assert_eq!(i.factor([3.0, 1.0, 1.0], 5, false), 0.9 * 3f64.powf(-0.2));
    assert_eq!(i.factor([0.999, 1.0, 1.0], 5, true), 1.0);
    assert_eq!(i.factor([1e9, 1.0, 1.0], 5, false), 0.2);
}

/// f jumps at t = 1 (y' = 0 before, 1 after). With a stop there, no accepted step has stages on
/// both sides of the jump, so each step integrates a polynomial of degree <= 1 exactly: the
/// answer is exact and no step is rejected. Without the stop, some accepted step straddles the
/// jump, the error estimate sees it and steps are rejected.
#[test]
fn steps_never_cross_tstops() {
    let f = |t: f64, _y: &V, dy: &mut V| dy[0] = if t < 1.0 { 0.0 } else { 1.0 };
    // Within two ulps of 1 counts as landing on it (t + (stop - t) rounds).
    let straddles = |d: &nodal_solve::DenseSolution<V>| d.steps.iter().any(|s| s.t < 1.0 - 4e-16 && s.t + s.h > 1.0 + 4e-16);
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-9);
    let (sol, dense) = solve_dense(&mut FnDynamics(f), &vec![0.0], &[0.0, 3.0], &opts.clone().with_tstops(vec![1.0]), &RmsNorm).unwrap();
    assert!(!straddles(&dense), "a step crossed the stop");
    assert!(dense.steps.iter().any(|s| s.t < 1.0 && (s.t + s.h - 1.0).abs() < 4e-16), "a step lands on the stop from below");
    assert!(dense.steps.iter().any(|s| s.t == 1.0f64.next_up()), "the next starts just after it");
    assert_eq!(sol.stats.rejected, 0);
    assert!((sol.ys[1][0] - 2.0).abs() < 1e-12, "{}", sol.ys[1][0]);
    let (free, dense) = solve_dense(&mut FnDynamics(f), &vec![0.0], &[0.0, 3.0], &opts, &RmsNorm).unwrap();
    assert!(straddles(&dense), "without the stop a step straddles the jump");
    assert!(free.stats.rejected > 0, "and the jump costs rejected steps");
}

/// The adjoint's seminorm (error control on y and a only) gives the same gradients to within
/// the tolerance and never more backward steps on this problem.
#[test]
fn adjoint_seminorm_matches_full_norm() {
    use nodal_solve::grad::{AdjointOptions, adjoint};
    use nodal_solve::mlp::Mlp;
    let (dim, hidden) = (3, 16);
    let params: Vec<f64> = (0..Mlp::<f64>::num_params_for(dim, hidden)).map(|i| ((i * 37 % 101) as f64 / 101.0 - 0.5) * 1.2).collect();
    let mut mlp = Mlp::new(dim, hidden, params).unwrap();
    let y0 = vec![0.3, -0.2, 0.5, 1.0, 0.1, -0.4];
    let ts = [0.0, 1.0, 2.5];
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-8, 1e-8);
    let sol = solve(&mut mlp, &y0, &ts, &opts, &RmsNorm).unwrap();
    let ybar: Vec<V> = sol.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
    let full = adjoint(&mut mlp, &ts, &sol.ys, &ybar, &AdjointOptions { solve: opts.clone(), seminorm: false }, false).unwrap();
    let semi = adjoint(&mut mlp, &ts, &sol.ys, &ybar, &AdjointOptions { solve: opts.clone(), seminorm: true }, false).unwrap();
    let scale = full.params.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (a, b) in full.params.iter().zip(&semi.params) {
        assert!((a - b).abs() < 1e-5 * scale, "{a} vs {b}");
    }
    assert!(semi.stats.steps() <= full.stats.steps(), "seminorm {} vs full {}", semi.stats.steps(), full.stats.steps());
}
