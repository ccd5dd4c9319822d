//! Method-of-lines layers against exact solutions (heat equation in 1-D and 2-D under each
//! boundary condition, Burgers by Cole-Hopf), their vector-Jacobian products against central
//! differences, and the stiffness that makes implicit methods pay.

use nodal_solve::pde::burgers::FLUX_WEIGHTS;
use nodal_solve::pde::{Axis, Boundary, Burgers, Convection, Grid, PointwiseMlp, Reaction, ReactionDiffusion, cole_hopf};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{ImplicitMethod, ImplicitSettings, LinearSolver, RmsNorm, SolveOptions, VjpDynamics, solve};
use std::f64::consts::PI;

fn implicit(rtol: f64) -> SolveOptions {
    SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Kvaerno5).with_tol(rtol, rtol * 1e-2).with_max_steps(100_000)
}

/// Max error of the heat equation's MOL solution at `t` against `e^{-lambda t} u0`.
fn heat_error(grid: Grid, mode: &dyn Fn(&Grid, usize) -> f64, lambda: f64, t: f64) -> f64 {
    let d = 0.1;
    let u0: Vec<f64> = (0..grid.len()).map(|i| mode(&grid, i)).collect();
    let mut f = ReactionDiffusion::new(grid, d, Reaction::FisherKpp { rate: 0.0 });
    let sol = solve(&mut f, &u0, &[0.0, t], &implicit(1e-10), &RmsNorm).unwrap();
    let decay = (-lambda * d * t).exp();
    sol.ys[1].iter().zip(&u0).map(|(u, v)| (u - decay * v).abs()).fold(0.0, f64::max)
}

/// Each boundary condition with its eigenmode: periodic sin(2 pi x), Dirichlet sin(pi x),
/// Neumann cos(pi x) on [0, 1] (and their products in 2-D). The MOL error against the exact
/// decay is second order in dx: it falls by 4 +- 0.3 when n doubles.
#[test]
fn heat_equation_converges_at_second_order_under_each_boundary() {
    type Mode = fn(f64) -> f64;
    let cases: [(Boundary, Mode, f64); 3] = [
        (Boundary::Periodic, |x| (2.0 * PI * x).sin(), 4.0 * PI * PI),
        (Boundary::Dirichlet, |x| (PI * x).sin(), PI * PI),
        (Boundary::Neumann, |x| (PI * x).cos(), PI * PI),
    ];
    for (b, m, k2) in cases {
        let e: Vec<f64> = [16, 32]
            .iter()
            .map(|&n| {
                let g = Grid::OneD(Axis::new(n, 1.0, b));
                heat_error(g, &|g, i| if let Grid::OneD(a) = g { m(a.x(i)) } else { unreachable!() }, k2, 0.2)
            })
            .collect();
        assert!(e[1] < 2e-3 && (e[0] / e[1] - 4.0).abs() < 0.3, "1-D {b:?}: errors {e:?}");
        let e2: Vec<f64> = [12, 24]
            .iter()
            .map(|&n| {
                let g = Grid::TwoD(Axis::new(n, 1.0, b), Axis::new(n, 1.0, b));
                heat_error(
                    g,
                    &|g, i| if let Grid::TwoD(ax, ay) = g { m(ax.x(i % ax.n)) * m(ay.x(i / ax.n)) } else { unreachable!() },
                    2.0 * k2,
                    0.1,
                )
            })
            .collect();
        assert!((e2[0] / e2[1] - 4.0).abs() < 0.4, "2-D {b:?}: errors {e2:?}");
    }
}

/// Viscous Burgers against its Cole-Hopf solution: second order in dx.
#[test]
fn burgers_matches_cole_hopf() {
    let (nu, c0, modes) = (0.1, 2.0, [(1.0, 0.3), (0.4, 1.0)]);
    let errs: Vec<f64> = [64, 128]
        .iter()
        .map(|&n| {
            let axis = Axis::new(n, 2.0 * PI, Boundary::Periodic);
            let u0: Vec<f64> = (0..n).map(|i| cole_hopf(axis.x(i), 0.0, nu, c0, &modes)).collect();
            let mut f = Burgers::new(axis, nu, Convection::Central);
            let sol = solve(&mut f, &u0, &[0.0, 1.0], &implicit(1e-10), &RmsNorm).unwrap();
            (0..n).map(|i| (sol.ys[1][i] - cole_hopf(axis.x(i), 1.0, nu, c0, &modes)).abs()).fold(0.0, f64::max)
        })
        .collect();
    assert!(errs[1] < 2e-3 && (errs[0] / errs[1] - 4.0).abs() < 0.5, "errors {errs:?}");
}

/// Central differences of `f` in `y` and in the parameters against the VJPs, for a learned
/// reaction (2 fields on a Neumann grid) and a learned convection (periodic).
#[test]
fn pde_layer_vjps_match_central_differences() {
    fn check<D: VjpDynamics<Vec<f64>, Params = Vec<f64>>>(f: &mut D, y: &[f64], set: &dyn Fn(&mut D, &[f64]), p: &[f64], what: &str) {
        let n = y.len();
        let a: Vec<f64> = (0..n).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.3).collect();
        let dot = |f: &mut D, y: &[f64]| {
            let mut dy = vec![0.0; n];
            f.eval(0.0, &y.to_vec(), &mut dy);
            dy.iter().zip(&a).map(|(x, w)| x * w).sum::<f64>()
        };
        let mut gy = vec![0.0; n];
        let mut gp = f.param_zeros();
        f.vjp(0.0, &y.to_vec(), &a, &mut gy, &mut gp);
        let eps = 1e-6;
        for i in 0..n {
            let (mut yp, mut ym) = (y.to_vec(), y.to_vec());
            yp[i] += eps;
            ym[i] -= eps;
            let fd = (dot(f, &yp) - dot(f, &ym)) / (2.0 * eps);
            assert!((fd - gy[i]).abs() < 1e-5 * (1.0 + fd.abs()), "{what} dy[{i}]: {fd} vs {}", gy[i]);
        }
        for k in 0..p.len() {
            let (mut pp, mut pm) = (p.to_vec(), p.to_vec());
            pp[k] += eps;
            pm[k] -= eps;
            set(f, &pp);
            let up = dot(f, y);
            set(f, &pm);
            let um = dot(f, y);
            set(f, p);
            let fd = (up - um) / (2.0 * eps);
            assert!((fd - gp[k]).abs() < 1e-5 * (1.0 + fd.abs()), "{what} dtheta[{k}]: {fd} vs {}", gp[k]);
        }
    }
    let h = 4;
    let p: Vec<f64> = (0..PointwiseMlp::param_count(h)).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.15).collect();
    let grid = Grid::OneD(Axis::new(7, 1.0, Boundary::Neumann));
    let mut rd = ReactionDiffusion::new(grid, 0.05, Reaction::Learned(PointwiseMlp::new(h, p.clone())));
    let y: Vec<f64> = (0..14).map(|i| 0.5 + 0.4 * (i as f64 * 0.9).sin()).collect();
    check(&mut rd, &y, &|f, q| f.reaction = Reaction::Learned(PointwiseMlp::new(4, q.to_vec())), &p, "reaction-diffusion");
    let axis = Axis::new(9, 2.0 * PI, Boundary::Periodic);
    let w: Vec<f64> = (0..FLUX_WEIGHTS).map(|i| ((i * 13 % 7) as f64 - 3.0) * 0.2).collect();
    let mut bg = Burgers::new(axis, 0.1, Convection::Learned(w.clone()));
    let yb: Vec<f64> = (0..18).map(|i| (i as f64 * 0.7).cos()).collect();
    check(&mut bg, &yb, &|f, q| f.convection = Convection::Learned(q.to_vec()), &w, "burgers");
}

/// A 2-D reaction-diffusion grid of 40 x 40 (1600 unknowns): Kvaerno5 with matrix-free
/// Newton-Krylov takes over ten times fewer steps than dopri5, whose step is capped by stability
/// near 3.3 dx^2 / (8 D), and both end at the same state. (Without a preconditioner its GMRES
/// iterations cost more evaluations than dopri5's steps at this size: docs/stiff.md.)
#[test]
fn stiff_diffusion_needs_few_implicit_steps() {
    let n = 40;
    let grid = Grid::TwoD(Axis::new(n, 1.0, Boundary::Neumann), Axis::new(n, 1.0, Boundary::Neumann));
    let u0: Vec<f64> = (0..n * n)
        .map(|i| {
            let (x, y) = (((i % n) as f64 + 0.5) / n as f64, ((i / n) as f64 + 0.5) / n as f64);
            (-((x - 0.3).powi(2) + (y - 0.6).powi(2)) / 0.02).exp()
        })
        .collect();
    let mut f = ReactionDiffusion::new(grid, 0.1, Reaction::FisherKpp { rate: 5.0 });
    let krylov = implicit(1e-5).with_implicit_settings(ImplicitSettings { linear: LinearSolver::krylov(), ..ImplicitSettings::default() });
    let a = solve(&mut f, &u0, &[0.0, 0.5], &krylov, &RmsNorm).unwrap();
    let explicit = SolveOptions::new(&DOPRI5).with_tol(1e-5, 1e-7).with_max_steps(100_000);
    let b = solve(&mut f, &u0, &[0.0, 0.5], &explicit, &RmsNorm).unwrap();
    eprintln!("implicit {:?}\nexplicit {:?}", a.stats, b.stats);
    assert!(a.stats.steps() * 10 < b.stats.steps(), "implicit {:?} explicit {:?}", a.stats, b.stats);
    let diff = a.ys[1].iter().zip(&b.ys[1]).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(diff < 1e-3, "max difference {diff}");
}
