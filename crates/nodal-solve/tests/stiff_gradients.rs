//! Gradients through implicit solves of a stiff problem (Robertson's kinetics with its rate
//! constants as parameters): the discrete adjoint of ESDIRK steps against central differences
//! of the same fixed-step solve, and the continuous adjoint with a stiff reverse solve against
//! a tight-tolerance exact gradient.

use nodal_solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{Dynamics, ImplicitMethod, ImplicitSettings, RmsNorm, SolveOptions, VjpDynamics, solve};

/// Robertson's system with rate constants `k = (k1, k2, k3)` as parameters.
struct Robertson {
    k: [f64; 3],
}

impl Dynamics<Vec<f64>> for Robertson {
    fn eval(&mut self, _t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        let [k1, k2, k3] = self.k;
        dy[0] = -k1 * y[0] + k3 * y[1] * y[2];
        dy[1] = k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] * y[1];
        dy[2] = k2 * y[1] * y[1];
    }
}

impl VjpDynamics<Vec<f64>> for Robertson {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        vec![0.0; 3]
    }
    fn vjp(&mut self, _t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        let [k1, k2, k3] = self.k;
        adj_y[0] = k1 * (a[1] - a[0]);
        adj_y[1] = k3 * y[2] * (a[0] - a[1]) - 2.0 * k2 * y[1] * a[1] + 2.0 * k2 * y[1] * a[2];
        adj_y[2] = k3 * y[1] * (a[0] - a[1]);
        adj_p[0] += y[0] * (a[1] - a[0]);
        adj_p[1] += y[1] * y[1] * (a[2] - a[1]);
        adj_p[2] += y[1] * y[2] * (a[0] - a[1]);
    }
}

const K: [f64; 3] = [0.04, 3e7, 1e4];
/// A start on the slow manifold (`k1 y1 = k3 y2 y3 + k2 y2^2`), past the initial transient of
/// `y0 = (1, 0, 0)`, whose first microseconds need steps far below the fixed step used here.
const Y0: [f64; 3] = [0.99, 3.4702e-5, 0.0099653];
/// Output times: one inside a fixed step (0.333, the Hermite path), the others on step ends.
const TS: [f64; 4] = [0.0, 0.333, 2.0, 10.0];
/// Loss weights on the outputs: `L = sum_k W[k] . y(t_k)`.
const W: [[f64; 3]; 4] = [[0.0; 3], [0.3, 1e4, -0.2], [-0.5, 2e4, 0.7], [1.0, -3e4, 0.4]];

fn loss(k: [f64; 3], y0: &[f64], opts: &SolveOptions) -> f64 {
    let sol = solve(&mut Robertson { k }, &y0.to_vec(), &TS, opts, &RmsNorm).unwrap();
    sol.ys.iter().zip(&W).map(|(y, w)| y.iter().zip(w).map(|(a, b)| a * b).sum::<f64>()).sum()
}

/// `dL/dy0` and `dL/dk` by the chosen gradient method.
fn gradient(opts: &SolveOptions, method: GradMethod, adjoint: &SolveOptions) -> (Vec<f64>, Vec<f64>) {
    let y0 = Y0.to_vec();
    let mut f = Robertson { k: K };
    let (sol, back) = solve_for_gradients(&mut f, &y0, &TS, opts, &RmsNorm, method).unwrap_or_else(|e| panic!("{e}"));
    let ybar: Vec<Vec<f64>> = W.iter().map(|w| w.to_vec()).collect();
    let aopts = AdjointOptions { solve: adjoint.clone(), seminorm: false };
    let g = back.gradients(&mut f, &TS, &sol.ys, &ybar, &aopts, false).unwrap();
    (g.y0, g.params)
}

/// Central differences of the loss in `y0` and in `k` (steps relative to each entry).
fn central(opts: &SolveOptions, rel: f64) -> (Vec<f64>, Vec<f64>) {
    let y0 = Y0;
    let gy: Vec<f64> = (0..3)
        .map(|i| {
            // A step relative to each entry (y0[1] is 3.5e-5): large enough against roundoff,
            // small enough that the stiff quadratic terms see a linear change.
            let d = rel * y0[i].abs().max(1e-3);
            let (mut p, mut m) = (y0, y0);
            p[i] += d;
            m[i] -= d;
            (loss(K, &p, opts) - loss(K, &m, opts)) / (2.0 * d)
        })
        .collect();
    let gk: Vec<f64> = (0..3)
        .map(|i| {
            let d = rel * K[i];
            let (mut p, mut m) = (K, K);
            p[i] += d;
            m[i] -= d;
            (loss(p, &y0, opts) - loss(m, &y0, opts)) / (2.0 * d)
        })
        .collect();
    (gy, gk)
}

fn assert_close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= rel * scale.max(1e-300), "{what}: got {got:?}, want {want:?}");
    }
}

/// Backprop and checkpointing through fixed Kvaerno steps equal central differences of the same
/// discrete map (Newton solved to 1e-10 of the tolerance so the map is smooth to that level).
#[test]
fn discrete_adjoint_through_esdirk_steps_matches_central_differences() {
    let settings = ImplicitSettings { newton_tol: 1e-10, max_newton: 50, ..ImplicitSettings::default() };
    for method in [ImplicitMethod::Kvaerno3, ImplicitMethod::Kvaerno5] {
        let opts =
            SolveOptions::new(&DOPRI5).with_implicit(method).with_implicit_settings(settings).with_tol(1e-8, 1e-12).with_fixed_step(0.01);
        let (fy, fk) = central(&opts, 1e-5);
        for grad in [GradMethod::Backprop, GradMethod::Checkpoint(Some(7))] {
            let (gy, gk) = gradient(&opts, grad, &opts);
            assert_close(&format!("{} {grad} dL/dy0", method.name()), &gy, &fy, 1e-6);
            assert_close(&format!("{} {grad} dL/dk", method.name()), &gk, &fk, 1e-6);
        }
    }
}

/// Adaptive steps: backprop differentiates the computed solution; with tight tolerances that is
/// the exact gradient, which the checkpointed continuous adjoint with a stiff reverse solve
/// (Kvaerno5 or Rodas5 for `[a, a_theta]`, `y` re-solved forwards) at rtol 1e-8 reproduces to
/// 1e-4. The plain adjoint, which integrates `y` backwards through the stiff decay, blows up:
/// that is a typed error, not a wrong gradient.
#[test]
fn continuous_adjoint_with_a_stiff_reverse_solve_matches_the_exact_gradient() {
    let tight = SolveOptions::new(&DOPRI5)
        .with_implicit(ImplicitMethod::Kvaerno5)
        .with_implicit_settings(ImplicitSettings { newton_tol: 1e-6, ..ImplicitSettings::default() })
        .with_tol(1e-11, 1e-14)
        .with_max_steps(100_000);
    let (ry, rk) = gradient(&tight, GradMethod::Backprop, &tight);
    let opts = SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Kvaerno5).with_tol(1e-8, 1e-12).with_max_steps(100_000);
    for reverse in [ImplicitMethod::Kvaerno5, ImplicitMethod::Rodas5] {
        let adj = opts.clone().with_implicit(reverse);
        let (gy, gk) = gradient(&opts, GradMethod::AdjointCheckpointed(None), &adj);
        assert_close(&format!("adjoint ({}) dL/dy0", reverse.name()), &gy, &ry, 1e-4);
        assert_close(&format!("adjoint ({}) dL/dk", reverse.name()), &gk, &rk, 1e-4);
    }
    let y0 = Y0.to_vec();
    let mut f = Robertson { k: K };
    let (sol, back) = solve_for_gradients(&mut f, &y0, &TS, &opts, &RmsNorm, GradMethod::Adjoint).unwrap();
    let ybar: Vec<Vec<f64>> = W.iter().map(|w| w.to_vec()).collect();
    let aopts = AdjointOptions { solve: opts.clone(), seminorm: false };
    assert!(back.gradients(&mut f, &TS, &sol.ys, &ybar, &aopts, false).is_err());
}

/// Rodas5 has no discrete adjoint: asking for backprop through it is a typed error.
#[test]
fn backprop_through_rosenbrock_steps_is_refused_with_a_reason() {
    let opts = SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Rodas5).with_tol(1e-6, 1e-10);
    let y0 = Y0.to_vec();
    let mut f = Robertson { k: K };
    let (sol, back) = solve_for_gradients(&mut f, &y0, &TS, &opts, &RmsNorm, GradMethod::Backprop).unwrap();
    let ybar: Vec<Vec<f64>> = W.iter().map(|w| w.to_vec()).collect();
    let aopts = AdjointOptions { solve: opts.clone(), seminorm: false };
    let err = back.gradients(&mut f, &TS, &sol.ys, &ybar, &aopts, false).unwrap_err();
    assert!(err.to_string().contains("rodas5") && err.to_string().contains("adjoint"), "{err}");
}
