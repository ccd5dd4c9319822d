//! Accuracy of the adaptive solvers against independent references: closed forms (DETEST A1-A4,
//! the Kepler orbit of DETEST class D, the Arenstorf orbit's period), high-precision solutions
//! (Van der Pol mu = 1, Lotka-Volterra: mpmath's Taylor-series `odefun` at 30 digits, tolerance
//! 1e-25), and reverse-time round trips.

use nodal_solve::tableau::{BOSH3, DOPRI5, DOPRI8, TSIT5};
use nodal_solve::{FnDynamics, PidController, RmsNorm, SolveOptions, Tableau, solve};

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

#[test]
fn pi_and_pid_controllers_reach_the_same_accuracy() {
    for c in [PidController::i(), PidController::pi(), PidController::pid()] {
        let opts = SolveOptions::new(&DOPRI5).with_tol(1e-9, 1e-11).with_controller(c);
        let mut f = FnDynamics(|t: f64, y: &V, dy: &mut V| dy[0] = y[0] * t.cos());
        let sol = solve(&mut f, &vec![1.0], &[0.0, 10.0], &opts, &RmsNorm).unwrap();
        assert!((sol.ys[1][0] - 10f64.sin().exp()).abs() < 1e-7, "{c:?}");
        assert!(sol.stats.accepted > 5);
    }
}

#[test]
fn steps_never_cross_tstops() {
    // f jumps at t = 1: y' = 0 before, 1 after; with a tstop the answer is exact.
    let f = |t: f64, _y: &V, dy: &mut V| dy[0] = if t < 1.0 { 0.0 } else { 1.0 };
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-9).with_tstops(vec![1.0]);
    let sol = solve(&mut FnDynamics(f), &vec![0.0], &[0.0, 3.0], &opts, &RmsNorm).unwrap();
    assert!((sol.ys[1][0] - 2.0).abs() < 1e-12, "{}", sol.ys[1][0]);
    // Without the stop the jump costs accuracy or rejected steps.
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-9);
    let free = solve(&mut FnDynamics(f), &vec![0.0], &[0.0, 3.0], &opts, &RmsNorm).unwrap();
    assert!(free.stats.rejected > sol.stats.rejected || (free.ys[1][0] - 2.0).abs() > 1e-12);
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
