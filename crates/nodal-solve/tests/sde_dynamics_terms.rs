//! `DynamicsSde`: the core's fused MLP as both drift and diffusion. Gradients through Heun and
//! Euler-Maruyama steps equal central differences of the solve (every `y0` entry and a spread of
//! parameters of both networks), and the transposed Milstein correction (one VJP of `g`) equals
//! its definition computed from central differences of `g`.

use nodal_solve::Dynamics;
use nodal_solve::mlp::Mlp;
use nodal_solve::sde::{DynamicsSde, MilsteinForm, Scheme, SdeGradMethod, SdeGrid, SdeTerms, SeededBrownian, sde_gradient, sde_solve};

fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale
        })
        .collect()
}

const D: usize = 3;
const H: usize = 8;

fn terms(params: &[f64]) -> DynamicsSde<f64, Mlp<f64>, Mlp<f64>> {
    let n = Mlp::<f64>::num_params_for(D, H);
    DynamicsSde::new(Mlp::new(D, H, params[..n].to_vec()).unwrap(), Mlp::new(D, H, params[n..].to_vec()).unwrap(), D)
}

fn loss(params: &[f64], y0: &[f64], scheme: Scheme) -> f64 {
    let mut path = SeededBrownian::new(3, 0.0, 0.5, 4, D, 1.0 / 64.0).unwrap();
    let grid = SdeGrid { t0: 0.0, dt: 1.0 / 64.0, steps: 32 };
    sde_solve(&mut terms(params), &mut path, scheme, &grid, y0, &[16, 32]).unwrap().ys.iter().flatten().map(|v| v * v).sum()
}

#[test]
fn gradients_through_core_dynamics_equal_central_differences() {
    let n = Mlp::<f64>::num_params_for(D, H);
    let params = values(2 * n, 1, 1.2);
    let y0 = values(4 * D, 2, 2.0);
    for scheme in [Scheme::Heun, Scheme::EulerMaruyama] {
        let mut path = SeededBrownian::new(3, 0.0, 0.5, 4, D, 1.0 / 64.0).unwrap();
        let grid = SdeGrid { t0: 0.0, dt: 1.0 / 64.0, steps: 32 };
        let g = sde_gradient(&mut terms(&params), &mut path, scheme, &grid, &y0, &[16, 32], SdeGradMethod::Backprop, 1 << 30, &mut |ys| {
            ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect()
        })
        .unwrap();
        assert_eq!(g.params.len(), 2 * n);
        let eps = 1e-6;
        let check = |analytic: f64, up: f64, down: f64, what: String| {
            let fd = (up - down) / (2.0 * eps);
            assert!((fd - analytic).abs() < 1e-6 * fd.abs().max(1.0), "{scheme:?} {what}: {analytic} vs central difference {fd}");
        };
        for i in 0..y0.len() {
            let (mut u, mut d) = (y0.clone(), y0.clone());
            u[i] += eps;
            d[i] -= eps;
            check(g.y0[i], loss(&params, &u, scheme), loss(&params, &d, scheme), format!("dL/dy0[{i}]"));
        }
        for i in (0..2 * n).step_by(7) {
            let (mut u, mut d) = (params.clone(), params.clone());
            u[i] += eps;
            d[i] -= eps;
            check(g.params[i], loss(&u, &y0, scheme), loss(&d, &y0, scheme), format!("dL/dtheta[{i}]"));
        }
    }
}

#[test]
fn transposed_milstein_correction_is_one_vjp_of_the_diffusion() {
    let n = Mlp::<f64>::num_params_for(D, H);
    let params = values(2 * n, 4, 1.2);
    let y = values(2 * D, 5, 2.0);
    let dw = values(2 * D, 6, 0.4);
    let h = 0.01;
    let mut t = terms(&params);
    let mut out = vec![0.0; y.len()];
    t.milstein(MilsteinForm::Transposed, 0.0, &y, &dw, h, &mut out).unwrap();
    // Definition: 1/2 sum_j (d g_j / d y_i) g_j (dW_j^2 - h), per row, with dg/dy by central differences.
    let mut g = Mlp::new(D, H, params[n..].to_vec()).unwrap();
    let eval = |g: &mut Mlp<f64>, y: &Vec<f64>| {
        let mut o = vec![0.0; y.len()];
        g.eval(0.0, y, &mut o);
        o
    };
    let g0 = eval(&mut g, &y);
    for i in 0..y.len() {
        let (mut u, mut d) = (y.clone(), y.clone());
        u[i] += 1e-6;
        d[i] -= 1e-6;
        let (gu, gd) = (eval(&mut g, &u), eval(&mut g, &d));
        let row = i / D;
        let want: f64 = (row * D..(row + 1) * D).map(|j| 0.5 * (gu[j] - gd[j]) / 2e-6 * g0[j] * (dw[j] * dw[j] - h)).sum();
        assert!((out[i] - want).abs() < 1e-8, "entry {i}: {} vs {want}", out[i]);
    }
    let e = t.milstein(MilsteinForm::Commutative, 0.0, &y, &dw, h, &mut out).unwrap_err();
    assert!(e.to_string().contains("unsupported"), "{e}");
}
