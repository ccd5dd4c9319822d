//! Strong convergence orders on geometric Brownian motion against its closed form, and SRA1's
//! on an additive-noise SDE against a fine solve on the same path.
//!
//! GBM (Higham 2001's test): `dX = mu X dt + sigma X dW` (Ito; Stratonovich drift
//! `mu - sigma^2 / 2`), `mu = 2`, `sigma = 1`, `X0 = 1`, `T = 1`; exact
//! `X(T) = exp((mu - sigma^2 / 2) T + sigma W(T))`. 4096 independent paths (the batch rows) of
//! one seeded Brownian path with cells of 2^-10; steps `dt = 2^-4 .. 2^-10` sum whole cells, so
//! every level sees the same path. Strong error = mean |X_N - X(T)|; order = least-squares
//! slope of log2(error) on log2(dt). Bounds: Euler-Maruyama in [0.4, 0.65], the order-1
//! schemes in [0.85, 1.15], Rößler's SRI in [1.35, 1.65] (the anchors measured 0.51-0.53,
//! 0.97-0.99 and 1.50 for torchsde's SRK with 4096 paths).

use nodal_solve::sde::{BrownianPath, MilsteinForm, Noise, Scheme, SdeError, SdeGrid, SdeTerms, SeededBrownian, sde_solve};

/// Scalar linear SDE `dX = a X dt + b X dW` per row, or additive `dX = f(X) dt + s dW`.
struct Linear {
    a: f64,
    b: f64,
}

impl SdeTerms<f64> for Linear {
    fn dim(&self) -> usize {
        1
    }
    fn channels(&self) -> usize {
        1
    }
    fn noise(&self) -> Noise {
        Noise::Diagonal
    }
    fn num_params(&self) -> usize {
        0
    }
    fn drift(&mut self, _t: f64, y: &[f64], out: &mut [f64]) {
        out.iter_mut().zip(y).for_each(|(o, v)| *o = self.a * v);
    }
    fn diffusion_times(&mut self, _t: f64, y: &[f64], dw: &[f64], out: &mut [f64]) {
        for i in 0..y.len() {
            out[i] = self.b * y[i] * dw[i];
        }
    }
    fn drift_vjp(&mut self, _t: f64, _y: &[f64], a: &[f64], adj_y: &mut [f64], _adj_p: &mut [f64]) {
        adj_y.iter_mut().zip(a).for_each(|(o, v)| *o = self.a * v);
    }
    fn diffusion_times_vjp(&mut self, _t: f64, _y: &[f64], dw: &[f64], a: &[f64], adj_y: &mut [f64], _adj_p: &mut [f64]) {
        for i in 0..a.len() {
            adj_y[i] = self.b * dw[i] * a[i];
        }
    }
    fn milstein(&mut self, _form: MilsteinForm, _t: f64, y: &[f64], dw: &[f64], ito_dt: f64, out: &mut [f64]) -> Result<(), SdeError> {
        // g = b y, dg/dy = b: every form is 1/2 b^2 y q.
        for i in 0..y.len() {
            out[i] = 0.5 * self.b * self.b * y[i] * (dw[i] * dw[i] - ito_dt);
        }
        Ok(())
    }
}

/// Additive noise: `dX = (sin X - X) dt + s dW`.
struct Additive {
    s: f64,
}

impl SdeTerms<f64> for Additive {
    fn dim(&self) -> usize {
        1
    }
    fn channels(&self) -> usize {
        1
    }
    fn noise(&self) -> Noise {
        Noise::Additive
    }
    fn num_params(&self) -> usize {
        0
    }
    fn drift(&mut self, _t: f64, y: &[f64], out: &mut [f64]) {
        out.iter_mut().zip(y).for_each(|(o, v)| *o = v.sin() - v);
    }
    fn diffusion_times(&mut self, _t: f64, _y: &[f64], dw: &[f64], out: &mut [f64]) {
        out.iter_mut().zip(dw).for_each(|(o, w)| *o = self.s * w);
    }
    fn drift_vjp(&mut self, _t: f64, y: &[f64], a: &[f64], adj_y: &mut [f64], _adj_p: &mut [f64]) {
        for i in 0..y.len() {
            adj_y[i] = (y[i].cos() - 1.0) * a[i];
        }
    }
    fn diffusion_times_vjp(&mut self, _t: f64, _y: &[f64], _dw: &[f64], _a: &[f64], adj_y: &mut [f64], _adj_p: &mut [f64]) {
        adj_y.iter_mut().for_each(|v| *v = 0.0);
    }
}

const PATHS: usize = 4096;
const MU: f64 = 2.0;
const SIGMA: f64 = 1.0;

fn slope(levels: &[i32], errors: &[f64]) -> f64 {
    let xs: Vec<f64> = levels.iter().map(|k| -(*k as f64)).collect();
    let ys: Vec<f64> = errors.iter().map(|e| e.log2()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / xs.iter().map(|x| (x - mx) * (x - mx)).sum::<f64>()
}

fn gbm_order(scheme: Scheme) -> (f64, Vec<f64>) {
    let drift = if scheme.calculus() == Some(nodal_solve::sde::Calculus::Ito) { MU } else { MU - 0.5 * SIGMA * SIGMA };
    let mut path = SeededBrownian::new(2024, 0.0, 1.0, PATHS, 1, 2f64.powi(-10)).unwrap();
    let mut w_t = vec![0.0; PATHS];
    path.increment(0.0, 1.0, &mut w_t).unwrap();
    let levels: Vec<i32> = (4..=10).collect();
    let errors: Vec<f64> = levels
        .iter()
        .map(|k| {
            let steps = 1usize << k;
            let grid = SdeGrid { t0: 0.0, dt: 1.0 / steps as f64, steps };
            let mut terms = Linear { a: drift, b: SIGMA };
            let sol = sde_solve(&mut terms, &mut path, scheme, &grid, &vec![1.0; PATHS], &[steps]).unwrap();
            sol.ys[0].iter().zip(&w_t).map(|(x, w)| (x - ((MU - 0.5 * SIGMA * SIGMA) + SIGMA * w).exp()).abs()).sum::<f64>() / PATHS as f64
        })
        .collect();
    (slope(&levels, &errors), errors)
}

#[test]
fn strong_orders_on_geometric_brownian_motion() {
    let cases = [
        ("euler_maruyama", 0.4, 0.65),
        ("milstein_ito", 0.85, 1.15),
        ("milstein_ito_commutative", 0.85, 1.15),
        ("milstein_ito_diag", 0.85, 1.15),
        ("milstein_strat", 0.85, 1.15),
        ("heun", 0.85, 1.15),
        ("midpoint", 0.85, 1.15),
        ("euler_heun", 0.85, 1.15),
        ("reversible_heun", 0.85, 1.15),
        ("sri", 1.35, 1.65),
    ];
    for (name, lo, hi) in cases {
        let (order, errors) = gbm_order(Scheme::by_name(name).unwrap());
        println!("{name}: strong order {order:.3}, errors {errors:.3?}");
        assert!((lo..=hi).contains(&order), "{name}: strong order {order} outside [{lo}, {hi}] (errors {errors:?})");
    }
}

#[test]
fn sra1_is_strong_order_one_and_a_half_on_additive_noise() {
    // dX = (sin X - X) dt + 0.8 dW, X0 = 0.5 on [0, 1]; reference: SRA1 at dt = 2^-13 on the
    // same path (cells of 2^-13); levels dt = 2^-3 .. 2^-8, 1024 paths. Euler-Maruyama is
    // order 1 on additive noise, the contrast.
    let paths = 1024;
    let mut path = SeededBrownian::new(77, 0.0, 1.0, paths, 1, 2f64.powi(-13)).unwrap();
    let mut solve = |scheme: Scheme, k: i32| {
        let steps = 1usize << k;
        let grid = SdeGrid { t0: 0.0, dt: 1.0 / steps as f64, steps };
        sde_solve(&mut Additive { s: 0.8 }, &mut path, scheme, &grid, &vec![0.5; paths], &[steps]).unwrap().ys.remove(0)
    };
    let reference = solve(Scheme::Sra1, 13);
    let levels: Vec<i32> = (3..=8).collect();
    for (scheme, lo, hi) in [(Scheme::Sra1, 1.35, 1.65), (Scheme::EulerMaruyama, 0.85, 1.15)] {
        let errors: Vec<f64> = levels
            .iter()
            .map(|k| solve(scheme, *k).iter().zip(&reference).map(|(a, b)| (a - b).abs()).sum::<f64>() / paths as f64)
            .collect();
        let order = slope(&levels, &errors);
        println!("{}: strong order {order:.3} on additive noise, errors {errors:.3?}", scheme.name());
        assert!((lo..=hi).contains(&order), "{}: order {order} outside [{lo}, {hi}]", scheme.name());
    }
}
