//! The regularisers' integrals against direct computations, and their gradients against finite
//! differences and across gradient methods.

use nodal_solve::grad::{AdjointOptions, adjoint, backprop_tape};
use nodal_solve::mlp::Mlp;
use nodal_solve::regularise::{FirstOrder, Penalty, RegulariseError, Regularised};
use nodal_solve::tableau::{DOPRI5, RK4};
use nodal_solve::{Dynamics, JvpDynamics, Record, RmsNorm, SolveOptions, VjpDynamics, solve, solve_recorded};

fn seeded(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        })
        .collect()
}

const D: usize = 2;
const H: usize = 8;
const ROWS: usize = 3;

fn mlp() -> Mlp<f64> {
    Mlp::new(D, H, seeded(Mlp::<f64>::num_params_for(D, H), 21).iter().map(|x| 2.5 * x).collect()).unwrap()
}

fn y0() -> Vec<f64> {
    seeded(ROWS * D, 22).iter().map(|x| 3.0 * x).collect()
}

/// Composite Simpson on `n` (even) intervals of `[0, t1]` of `g(y(t))`, with `y(t)` from a tight
/// plain (unregularised) solve: independent of the regularisers' code.
fn simpson_along_trajectory(t1: f64, n: usize, mut g: impl FnMut(&mut Mlp<f64>, &Vec<f64>) -> f64) -> f64 {
    let ts: Vec<f64> = (0..=n).map(|i| t1 * i as f64 / n as f64).collect();
    let mut m = mlp();
    let sol = solve(&mut m, &y0(), &ts, &SolveOptions::new(&DOPRI5).with_tol(1e-12, 1e-13), &RmsNorm).unwrap();
    let h = t1 / n as f64;
    let mut s = 0.0;
    for (i, y) in sol.ys.iter().enumerate() {
        let w = if i == 0 || i == n {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        s += w * g(&mut m, y);
    }
    s * h / 3.0
}

fn regularised_integral(pen: Penalty, seed: u64, t1: f64) -> f64 {
    let mut r = Regularised::new(mlp(), D, &[pen], seed).unwrap();
    let y = r.augment(&y0());
    let sol = solve(&mut r, &y, &[0.0, t1], &SolveOptions::new(&DOPRI5).with_tol(1e-11, 1e-12), &RmsNorm).unwrap();
    r.values(&sol.ys[1])[0]
}

#[test]
fn kinetic_energy_equals_quadrature_of_f_squared() {
    let direct = simpson_along_trajectory(1.0, 400, |m, y| {
        let mut f = vec![0.0; y.len()];
        m.eval(0.0, y, &mut f);
        f.iter().map(|v| v * v).sum::<f64>() / ROWS as f64
    });
    let carried = regularised_integral(Penalty::Kinetic, 0, 1.0);
    assert!(direct > 1e-2, "a non-trivial case: {direct}");
    assert!((carried - direct).abs() < 1e-8 * direct.max(1.0), "carried {carried} vs quadrature {direct}");
}

/// Exact `‖J‖_F²` per row from Jacobian-vector products along the unit vectors.
fn exact_frobenius(m: &mut Mlp<f64>, y: &Vec<f64>) -> f64 {
    let mut s = 0.0;
    for k in 0..D {
        let v: Vec<f64> = (0..y.len()).map(|i| if i % D == k { 1.0 } else { 0.0 }).collect();
        let (mut f, mut jv) = (vec![0.0; y.len()], vec![0.0; y.len()]);
        m.eval_and_jvp(0.0, y, &v, &mut f, &mut jv);
        s += jv.iter().map(|x| x * x).sum::<f64>();
    }
    s / ROWS as f64
}

#[test]
fn jacobian_unit_vector_products_equal_finite_difference_jacobian() {
    // The exact Frobenius norm used below, checked against a finite-difference Jacobian.
    let mut m = mlp();
    let y = y0();
    let eps = 1e-6;
    let mut fd = 0.0;
    for i in 0..y.len() {
        let (mut yp, mut ym) = (y.clone(), y.clone());
        yp[i] += eps;
        ym[i] -= eps;
        let (mut fp, mut fm) = (vec![0.0; y.len()], vec![0.0; y.len()]);
        m.eval(0.0, &yp, &mut fp);
        m.eval(0.0, &ym, &mut fm);
        // rows are independent: only entries of the same row are non-zero
        fd += fp.iter().zip(&fm).map(|(a, b)| ((a - b) / (2.0 * eps)).powi(2)).sum::<f64>();
    }
    let exact = exact_frobenius(&mut m, &y);
    assert!((fd / ROWS as f64 - exact).abs() < 1e-6 * exact, "fd {} vs jvp {exact}", fd / ROWS as f64);
}

#[test]
fn hutchinson_estimate_is_unbiased_for_the_exact_frobenius_integral() {
    let exact = simpson_along_trajectory(1.0, 400, exact_frobenius);
    // Mean over seeds of the one-probe estimate, within 4 standard errors of the exact integral.
    let samples: Vec<f64> = (0..400).map(|s| regularised_integral(Penalty::JacobianFrobenius { probes: 1 }, s, 1.0)).collect();
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (samples.len() - 1) as f64;
    let se = (var / samples.len() as f64).sqrt();
    assert!(var > 0.0, "the estimate must actually vary with the probes");
    assert!((mean - exact).abs() < 4.0 * se, "mean {mean} vs exact {exact} (standard error {se})");
    // More probes, less spread: 16 probes per evaluation.
    let many: Vec<f64> = (0..40).map(|s| regularised_integral(Penalty::JacobianFrobenius { probes: 16 }, 1000 + s, 1.0)).collect();
    let m16 = many.iter().sum::<f64>() / many.len() as f64;
    let v16 = many.iter().map(|x| (x - m16).powi(2)).sum::<f64>() / (many.len() - 1) as f64;
    assert!(v16 < var / 4.0, "16 probes should cut the variance well below 1/4: {v16} vs {var}");
}

#[test]
fn second_order_penalty_equals_quadrature_of_finite_difference_acceleration() {
    // d²y/dt² by central differences of f along the exact flow: f(y(t + h)) - f(y(t - h)), with
    // y(t ± h) from tight solves, independent of the Jacobian-vector product code.
    let direct = simpson_along_trajectory(1.0, 200, |m, y| {
        let h = 1e-4;
        let opts = SolveOptions::new(&DOPRI5).with_tol(1e-13, 1e-14);
        let fwd = solve(m, y, &[0.0, h], &opts, &RmsNorm).unwrap().ys[1].clone();
        let bwd = solve(m, y, &[0.0, -h], &opts, &RmsNorm).unwrap().ys[1].clone();
        let (mut fp, mut fm) = (vec![0.0; y.len()], vec![0.0; y.len()]);
        m.eval(0.0, &fwd, &mut fp);
        m.eval(0.0, &bwd, &mut fm);
        fp.iter().zip(&fm).map(|(a, b)| ((a - b) / (2.0 * h)).powi(2)).sum::<f64>() / ROWS as f64
    });
    let carried = regularised_integral(Penalty::Order2, 0, 1.0);
    assert!(direct > 1e-2, "a non-trivial case: {direct}");
    assert!((carried - direct).abs() < 1e-5 * direct, "carried {carried} vs finite differences {direct}");
}

const PENALTIES: [Penalty; 3] = [Penalty::Kinetic, Penalty::JacobianFrobenius { probes: 2 }, Penalty::Order2];
const WEIGHTS: [f64; 3] = [0.3, 0.2, 0.1];

/// `L = Σ y(1)² + Σ λ_i r_i(1)` and its cotangents.
fn loss_and_ybar(y1: &[f64]) -> (f64, Vec<f64>) {
    let n = y1.len() - 3;
    let mut l = y1[..n].iter().map(|v| v * v).sum::<f64>();
    let mut g: Vec<f64> = y1[..n].iter().map(|v| 2.0 * v).collect();
    for i in 0..3 {
        l += WEIGHTS[i] * y1[n + i];
        g.push(WEIGHTS[i]);
    }
    (l, g)
}

fn fixed_step_loss(params: &[f64], y0: &[f64]) -> f64 {
    let mut r = Regularised::new(Mlp::new(D, H, params.to_vec()).unwrap(), D, &PENALTIES, 5).unwrap();
    let y = r.augment(y0);
    let sol = solve(&mut r, &y, &[0.0, 1.0], &SolveOptions::new(&RK4).with_fixed_step(0.05), &RmsNorm).unwrap();
    loss_and_ybar(&sol.ys[1]).0
}

#[test]
fn regularised_backprop_gradients_match_finite_differences() {
    let mut r = Regularised::new(mlp(), D, &PENALTIES, 5).unwrap();
    let y = r.augment(&y0());
    let ts = [0.0, 1.0];
    let opts = SolveOptions::new(&RK4).with_fixed_step(0.05);
    let (sol, tape) = solve_recorded(&mut r, &y, &ts, &opts, &RmsNorm, Record::Every(1)).unwrap();
    let (_, g1) = loss_and_ybar(&sol.ys[1]);
    let ybar = vec![vec![0.0; y.len()], g1];
    let g = backprop_tape(&mut r, &RK4, tape.as_ref().unwrap(), &ts, &sol.ys, &ybar, false);
    let p = mlp().params;
    let eps = 1e-6;
    for i in 0..p.len() {
        let (mut pp, mut pm) = (p.clone(), p.clone());
        pp[i] += eps;
        pm[i] -= eps;
        let fd = (fixed_step_loss(&pp, &y0()) - fixed_step_loss(&pm, &y0())) / (2.0 * eps);
        assert!((fd - g.params[i]).abs() < 1e-6 * (1.0 + fd.abs()), "param {i}: fd {fd} vs backprop {}", g.params[i]);
    }
    for i in 0..ROWS * D {
        let (mut yp, mut ym) = (y0(), y0());
        yp[i] += eps;
        ym[i] -= eps;
        let fd = (fixed_step_loss(&p, &yp) - fixed_step_loss(&p, &ym)) / (2.0 * eps);
        assert!((fd - g.y0[i]).abs() < 1e-6 * (1.0 + fd.abs()), "y0 {i}: fd {fd} vs backprop {}", g.y0[i]);
    }
}

#[test]
fn regularised_adjoint_agrees_with_backprop_and_checkpointing() {
    let ts = [0.0, 0.5, 1.0];
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-12);
    let mut grads = Vec::new();
    for record in [Record::Every(1), Record::Every(3), Record::None] {
        let mut r = Regularised::new(mlp(), D, &PENALTIES, 5).unwrap();
        let y = r.augment(&y0());
        let (sol, tape) = solve_recorded(&mut r, &y, &ts, &opts, &RmsNorm, record).unwrap();
        let (_, g1) = loss_and_ybar(&sol.ys[2]);
        let ybar = vec![vec![0.0; y.len()], vec![0.0; y.len()], g1];
        let g = match tape {
            Some(tape) => backprop_tape(&mut r, &DOPRI5, &tape, &ts, &sol.ys, &ybar, false),
            None => adjoint(&mut r, &ts, &sol.ys, &ybar, &AdjointOptions { solve: opts.clone(), seminorm: false }, false).unwrap(),
        };
        grads.push(g);
    }
    let scale = grads[0].params.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, g) in grads.iter().enumerate().skip(1) {
        let err = g.params.iter().zip(&grads[0].params).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        let tol = if k == 1 { 1e-12 } else { 1e-6 };
        assert!(err < tol * scale, "method {k}: parameter gradients differ by {err} (scale {scale})");
        let erry = g.y0.iter().zip(&grads[0].y0).take(ROWS * D).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(erry < tol * scale, "method {k}: y0 gradients differ by {erry}");
    }
}

#[test]
fn penalties_change_the_gradient() {
    // The regularisers must actually contribute: zero weights give the plain solve's gradient,
    // non-zero weights a different one.
    let ts = [0.0, 1.0];
    let opts = SolveOptions::new(&RK4).with_fixed_step(0.1);
    let mut r = Regularised::new(mlp(), D, &PENALTIES, 5).unwrap();
    let y = r.augment(&y0());
    let (sol, tape) = solve_recorded(&mut r, &y, &ts, &opts, &RmsNorm, Record::Every(1)).unwrap();
    let (_, mut g1) = loss_and_ybar(&sol.ys[1]);
    let with = backprop_tape(&mut r, &RK4, tape.as_ref().unwrap(), &ts, &sol.ys, &[vec![0.0; y.len()], g1.clone()], false);
    let n = ROWS * D;
    g1[n..].iter_mut().for_each(|v| *v = 0.0);
    let without = backprop_tape(&mut r, &RK4, tape.as_ref().unwrap(), &ts, &sol.ys, &[vec![0.0; y.len()], g1], false);
    let mut plain = mlp();
    let (psol, ptape) = solve_recorded(&mut plain, &y0(), &ts, &opts, &RmsNorm, Record::Every(1)).unwrap();
    let pbar: Vec<f64> = psol.ys[1].iter().map(|v| 2.0 * v).collect();
    let pg = backprop_tape(&mut plain, &RK4, ptape.as_ref().unwrap(), &ts, &psol.ys, &[vec![0.0; n], pbar], false);
    assert!(without.params.iter().zip(&pg.params).all(|(a, b)| (a - b).abs() < 1e-12));
    let diff = with.params.iter().zip(&pg.params).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff > 1e-3, "penalties should move the gradient: {diff}");
}

#[test]
fn jacobian_penalties_refuse_first_order_dynamics() {
    let e = Regularised::<f64, _>::new(FirstOrder(mlp()), D, &[Penalty::Order2], 0).err();
    assert_eq!(e, Some(RegulariseError::NeedsJvp { penalty: "order2" }));
    let e = Regularised::<f64, _>::new(mlp(), D, &[Penalty::JacobianFrobenius { probes: 0 }], 0).err();
    assert_eq!(e, Some(RegulariseError::NoProbes));
    // Kinetic energy works through the first-order wrapper and equals the direct one.
    let mut a = Regularised::new(FirstOrder(mlp()), D, &[Penalty::Kinetic], 0).unwrap();
    let mut b = Regularised::new(mlp(), D, &[Penalty::Kinetic], 0).unwrap();
    let y = a.augment(&y0());
    let (mut da, mut db) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    a.eval(0.0, &y, &mut da);
    b.eval(0.0, &y, &mut db);
    assert_eq!(da, db);
    // So do its vector-Jacobian products (the kinetic term needs no JVP of f).
    let cot: Vec<f64> = seeded(y.len(), 23);
    let (mut ya, mut yb) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    let (mut pa, mut pb) = (a.param_zeros(), b.param_zeros());
    a.vjp(0.0, &y, &cot, &mut ya, &mut pa);
    b.vjp(0.0, &y, &cot, &mut yb, &mut pb);
    assert!(pa.iter().any(|&v| v != 0.0));
    assert_eq!((ya, pa), (yb, pb));
}
