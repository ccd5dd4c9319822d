//! Burn modules as SDE terms: a burn MLP drift and a burn sigmoid diffusion with the SDE
//! reference file's weights reproduce its outputs and discretise-then-optimise gradients
//! (every derivative-free scheme, backprop, checkpointing and reversible Heun's adjoint), and the
//! Milstein forward pass; gradients of Milstein on modules are a typed error.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::neural_ode::OdeFunc;
use nodal::sde::{ModuleSde, module_sde};
use nodal::solve::sde::{Scheme, SdeError, SdeGradMethod, SdeGrid, StoredIncrements, sde_gradient, sde_solve};
use serde_json::Value;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/sde_vectors_seed0.json");

#[derive(Module, Debug)]
struct Drift {
    l1: Linear,
    l2: Linear,
}

impl OdeFunc for Drift {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        self.l2.forward(self.l1.forward(y).tanh())
    }
}

#[derive(Module, Debug)]
struct Diffusion {
    l: Linear,
}

impl OdeFunc for Diffusion {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        sigmoid(self.l.forward(y))
    }
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => panic!(),
    }
}

/// `[out][in]` row-major into burn's `[in][out]` weight (a transpose), and back.
fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| (i, j))).map(|(i, j)| m[i * cols + j]).collect()
}

fn linear(w: &Value, b: &Value, dev: &Device) -> Linear {
    let (wf, bf) = (flat(w), flat(b));
    let (out, inp) = (bf.len(), wf.len() / bf.len());
    let mut l = LinearConfig::new(inp, out).init(dev);
    l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(transpose(&wf, out, inp), [inp, out]), (dev, DType::F64)));
    l.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bf, [out]), (dev, DType::F64))));
    l
}

fn setup() -> (Value, ModuleSde<f64, Drift, Diffusion>, StoredIncrements<f64>, SdeGrid, Vec<f64>) {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let p = &file["problem"];
    let w = &p["weights"];
    let dev = Device::flex();
    let drift = Drift { l1: linear(&w["W1"], &w["b1"], &dev), l2: linear(&w["W2"], &w["b2"], &dev) };
    let diffusion = Diffusion { l: linear(&w["V"], &w["c"], &dev) };
    let terms = module_sde(&drift, &diffusion, &dev, 3);
    let dw: Vec<Vec<f64>> = p["dW"].as_array().unwrap().iter().map(flat).collect();
    let dt = p["dt"].as_f64().unwrap();
    let path = StoredIncrements::new(0.0, dt, 4, 3, dw).unwrap();
    let grid = SdeGrid { t0: 0.0, dt, steps: 64 };
    let y0 = flat(&p["y0"]);
    (file, terms, path, grid, y0)
}

/// Largest per-array distance relative to each reference array's largest entry, with nodal's
/// gradient in burn's layout (weights `[in][out]`).
fn distance(file: &Value, scheme: &str, y0: &[f64], params: &[f64]) -> f64 {
    let g = &file["reference"][scheme]["grads"];
    let (d, h) = (3, 8);
    let mut arrays = vec![("y0", y0.to_vec())];
    let mut off = 0;
    for (name, rows, cols) in [("W1", h, d), ("b1", 0, h), ("W2", d, h), ("b2", 0, d), ("V", d, d), ("c", 0, d)] {
        let n = if rows == 0 { cols } else { rows * cols };
        let block = &params[off..off + n];
        // burn's [in][out] block back to the reference's [out][in].
        arrays.push((name, if rows == 0 { block.to_vec() } else { transpose(block, cols, rows) }));
        off += n;
    }
    assert_eq!(off, params.len());
    arrays
        .iter()
        .map(|(name, v)| {
            let r = flat(&g[*name]);
            let scale = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            v.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
        })
        .fold(0.0, f64::max)
}

#[test]
fn burn_modules_reproduce_the_sde_reference_vectors() {
    let out_steps = [32, 64];
    for name in ["euler_maruyama", "euler_heun", "heun", "midpoint", "reversible_heun", "milstein_ito", "milstein_strat"] {
        let scheme = Scheme::by_name(name).unwrap();
        let (file, mut terms, mut path, grid, y0) = setup();
        let sol = sde_solve(&mut terms, &mut path, scheme, &grid, &y0, &out_steps).unwrap();
        let want = flat(&file["reference"][name]["ys"]);
        let err = sol.ys.iter().flatten().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "{name}: ys off by {err:e}");
        let mut methods = vec![SdeGradMethod::Backprop, SdeGradMethod::Checkpoint { every: 8 }];
        if scheme == Scheme::ReversibleHeun {
            methods.push(SdeGradMethod::ReversibleAdjoint);
        }
        for method in methods {
            let (file, mut terms, mut path, grid, y0) = setup();
            let r = sde_gradient(&mut terms, &mut path, scheme, &grid, &y0, &out_steps, method, 1 << 30, &mut |ys| {
                ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect()
            });
            if name.starts_with("milstein") {
                assert!(matches!(r, Err(SdeError::Unsupported(_))), "{name}: gradients of Milstein on modules must be a typed error");
                continue;
            }
            let g = r.unwrap();
            let d = distance(&file, name, &g.y0, &g.params);
            assert!(d < 1e-10, "{name} {method:?}: gradients off by {d:e}");
        }
    }
}

/// Sum over the output states of `sum(y^2)` (the reference file's loss).
fn sum_of_squares(ys: &[Tensor<2>]) -> Tensor<1> {
    ys.iter().map(|y| y.clone().powi_scalar(2).sum()).reduce(|a, b| a + b).unwrap()
}

#[test]
fn tensor_solves_and_autodiff_reproduce_the_sde_reference_vectors() {
    use nodal::sde::{TENSOR_SCHEMES, TensorSdeTerms, sde_solve_tensor};
    struct Pair<'a>(&'a Drift, &'a Diffusion);
    impl TensorSdeTerms for Pair<'_> {
        fn drift_diffusion(&self, t: f64, y: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
            (self.0.forward(t, y.clone()), self.1.forward(t, y))
        }
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let p = &file["problem"];
    let w = &p["weights"];
    let ad = Device::flex().autodiff();
    let dw: Vec<Vec<f64>> = p["dW"].as_array().unwrap().iter().map(flat).collect();
    let dt = p["dt"].as_f64().unwrap();
    let grid = SdeGrid { t0: 0.0, dt, steps: 64 };
    for scheme in TENSOR_SCHEMES {
        let name = scheme.name();
        let drift = Drift { l1: linear(&w["W1"], &w["b1"], &ad), l2: linear(&w["W2"], &w["b2"], &ad) };
        let diffusion = Diffusion { l: linear(&w["V"], &w["c"], &ad) };
        let y0 = Tensor::<2>::from_data(TensorData::new(flat(&p["y0"]), [4, 3]), (&ad, DType::F64)).require_grad();
        let mut path = StoredIncrements::new(0.0, dt, 4, 3, dw.clone()).unwrap();
        let ys = sde_solve_tensor(&Pair(&drift, &diffusion), &mut path, scheme, &grid, y0.clone(), &[32, 64]).unwrap();
        let got: Vec<f64> = ys.iter().flat_map(|y| y.clone().into_data().convert::<f64>().try_to_vec::<f64>().unwrap()).collect();
        let want = flat(&file["reference"][name]["ys"]);
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "{name}: ys off by {err:e}");
        let grads = sum_of_squares(&ys).backward();
        let g = |t: &Tensor<2>| t.grad(&grads).unwrap().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
        let gb = |t: &Tensor<1>| t.grad(&grads).unwrap().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
        let mut params = Vec::new();
        for l in [&drift.l1, &drift.l2, &diffusion.l] {
            params.extend(g(&l.weight.val()));
            params.extend(gb(&l.bias.as_ref().unwrap().val()));
        }
        let d = distance(&file, name, &g(&y0), &params);
        assert!(d < 1e-10, "{name}: autodiff gradients through the tensor solve off by {d:e}");
    }
}

#[test]
fn tensor_solves_refuse_other_schemes_and_mismatched_paths() {
    use nodal::sde::{TensorSdeTerms, sde_solve_tensor};
    struct Zero;
    impl TensorSdeTerms for Zero {
        fn drift_diffusion(&self, _t: f64, y: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
            (y.zeros_like(), y.ones_like())
        }
    }
    let dev = Device::flex();
    let y0 = Tensor::<2>::zeros([4, 3], (&dev, DType::F32));
    let grid = SdeGrid { t0: 0.0, dt: 0.1, steps: 4 };
    let mut path = nodal::solve::sde::SeededBrownian::new(1, 0.0, 0.4, 4, 3, 0.1).unwrap();
    let milstein = sde_solve_tensor(&Zero, &mut path, Scheme::by_name("milstein_ito").unwrap(), &grid, y0.clone(), &[4]);
    assert!(matches!(milstein, Err(SdeError::Unsupported(_))));
    let mut narrow = nodal::solve::sde::SeededBrownian::new(1, 0.0, 0.4, 4, 2, 0.1).unwrap();
    assert!(matches!(sde_solve_tensor(&Zero, &mut narrow, Scheme::EulerMaruyama, &grid, y0.clone(), &[4]), Err(SdeError::Shape(_))));
    assert!(matches!(
        sde_solve_tensor(&Zero, &mut path, Scheme::EulerMaruyama, &grid, y0.clone(), &[5]),
        Err(SdeError::InvalidArgument(_))
    ));
    // The zero-drift, unit-diffusion solve is the path itself: W(0.4) - W(0).
    let ys = sde_solve_tensor(&Zero, &mut path, Scheme::EulerMaruyama, &grid, y0, &[4]).unwrap();
    let mut w = vec![0.0f64; 12];
    nodal::solve::sde::BrownianPath::increment(&mut path, 0.0, 0.4, &mut w).unwrap();
    let got = ys[0].clone().into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
    let err = got.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 1e-5, "f32 sum of four increments vs the path's W(0.4): {err:e}");
}

/// Posterior Ornstein-Uhlenbeck `dz = -θ z dt + σ dW` against a Brownian prior `dz = σ dW`: the
/// path KL is `θ²/(2σ²) ∫ E[z_t²] dt` with `E[z_t²] = z0² e^{-2θt} + σ²/(2θ) (1 - e^{-2θt})`.
/// The extra state's mean over 4000 posterior paths must match within four standard errors plus
/// Euler-Maruyama's O(dt) bias (dt = 1/200: below 1%).
#[test]
fn path_kl_state_matches_the_closed_form_for_ornstein_uhlenbeck() {
    use nodal::sde::{PathKl, PosteriorPrior, sde_solve_tensor};
    struct Ou {
        theta: f64,
        sigma: f64,
    }
    impl PosteriorPrior for Ou {
        fn latent(&self) -> usize {
            1
        }
        fn drifts_diffusion(&self, _t: f64, z: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
            (z.clone().mul_scalar(-self.theta), z.zeros_like(), z.ones_like().mul_scalar(self.sigma))
        }
    }
    let (theta, sigma, z0, t1, rows, steps) = (1.0f64, 0.5f64, 1.0f64, 1.0f64, 4000usize, 200usize);
    let model = Ou { theta, sigma };
    let terms = PathKl::new(&model);
    let dev = Device::flex();
    let y0 = terms.initial(Tensor::<2>::ones([rows, 1], (&dev, DType::F64)).mul_scalar(z0));
    let grid = SdeGrid { t0: 0.0, dt: t1 / steps as f64, steps };
    let mut path = nodal::solve::sde::SeededBrownian::new(7, 0.0, t1, rows, 2, t1 / steps as f64).unwrap();
    let ys = sde_solve_tensor(&terms, &mut path, Scheme::EulerMaruyama, &grid, y0, &[steps]).unwrap();
    let (_, kl) = terms.split(ys[0].clone());
    let kl = kl.into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
    let mean = kl.iter().sum::<f64>() / rows as f64;
    let var = kl.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (rows - 1) as f64;
    let se = (var / rows as f64).sqrt();
    let e = (-2.0 * theta * t1).exp();
    let integral = z0 * z0 * (1.0 - e) / (2.0 * theta) + sigma * sigma / (2.0 * theta) * (t1 - (1.0 - e) / (2.0 * theta));
    let exact = theta * theta / (2.0 * sigma * sigma) * integral;
    assert!((mean - exact).abs() < 4.0 * se + 0.01 * exact, "path KL {mean} ± {se} vs closed form {exact}");
}
